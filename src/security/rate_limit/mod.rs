//! Per-client rate limiting, and where its counts live.
//!
//! Threat: one client (or one IPv6 /64) flooding the server, or guessing keys.
//!
//! [`EnforceLimits`] answers 429 for a client over its request budget, or one that failed
//! authentication too often this window (even with a valid key now), and counts every 401 it
//! lets through. It asks a [`RateLimitStore`] for each decision: today the in-process sliding
//! window of [`sliding`] (its guarantee and memory bound are in that module's doc); a store
//! shared by several instances is another implementation of the same trait.

pub mod sliding;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use tokio::time::Instant;

use crate::error::Rejection;
use crate::policy::RequestPolicy;
use crate::security::client_ip::client_ip;

pub use sliding::{RateLimiter, SHARDS, SUB_BUCKETS, Window};

/// The configuration of one limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Requests allowed per window.
    pub limit: u32,
    pub window: Duration,
    /// Most clients tracked individually.
    pub max_clients: usize,
    /// IPv6 addresses are grouped by this many leading bits.
    pub ipv6_prefix: u8,
}

/// What the limiter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u32 },
    Limited { retry_after: Duration },
}

/// Whose budget a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A client address (IPv6 grouped by the store's prefix).
    Address(IpAddr),
    /// A caller, by what it is bound to (see [`crate::security::principal::Principal::binding`]),
    /// or a finer name built from it (a caller and a tool).
    Caller(&'a str),
}

/// Where a limiter keeps its counts, and decides. Every method is synchronous and cheap: it
/// runs on the request path, before the body is read.
pub trait RateLimitStore: std::fmt::Debug + Send + Sync + 'static {
    /// The limit, window and client grouping this store enforces.
    fn policy(&self) -> Policy;

    /// Counts one request from `subject` at `now` if it fits.
    fn check(&self, subject: Subject<'_>, now: Instant) -> Decision;

    /// Whether `subject` is over its limit at `now`, without counting anything.
    fn peek(&self, subject: Subject<'_>, now: Instant) -> Decision;

    /// Clients tracked individually (a gauge).
    fn tracked(&self) -> usize;

    /// Starts whatever upkeep the store needs in the background (dropping idle clients), if any.
    fn spawn_maintenance(self: Arc<Self>) -> Option<tokio::task::JoinHandle<()>>;
}

/// The two limiters: all requests, and failed authentications (throttled harder).
#[derive(Debug, Clone)]
pub struct Limiters {
    pub requests: Arc<dyn RateLimitStore>,
    pub auth_failures: Arc<dyn RateLimitStore>,
}

impl Limiters {
    /// Both limiters over the in-process store.
    pub fn in_process(requests: Policy, auth_failures: Policy, epoch: Instant) -> Self {
        Self {
            requests: Arc::new(RateLimiter::new(requests, epoch)),
            auth_failures: Arc::new(RateLimiter::new(auth_failures, epoch)),
        }
    }

    /// The background upkeep of both stores.
    pub fn spawn_maintenance(&self) -> Vec<tokio::task::JoinHandle<()>> {
        [self.requests.clone(), self.auth_failures.clone()]
            .into_iter()
            .filter_map(RateLimitStore::spawn_maintenance)
            .collect()
    }
}

/// The 429 of `limiter` for a client that may retry after `retry_after`.
pub fn limited(limiter: &dyn RateLimitStore, retry_after: Duration) -> Rejection {
    let policy = limiter.policy();
    Rejection::RateLimited {
        retry_after_secs: retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
        limit: policy.limit,
        window_secs: policy.window.as_secs().max(1),
    }
    .at_least_one_second()
}

/// Policy: 429 for a client over its request budget, or one that failed authentication too
/// often this window (even with a valid key now); counts every 401 it lets through.
#[derive(Debug, Clone)]
pub struct EnforceLimits(pub Limiters);

impl RequestPolicy for EnforceLimits {
    /// The failed-authentication limiter and the client, to count a 401.
    type Carry = (Arc<dyn RateLimitStore>, IpAddr);

    fn before(&self, request: &mut Request) -> Result<Self::Carry, Rejection> {
        let limiters = &self.0;
        let ip = client_ip(request.extensions()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let now = Instant::now();
        let refusal = match limiters.requests.check(Subject::Address(ip), now) {
            Decision::Limited { retry_after } => {
                Some(("requests", limited(&*limiters.requests, retry_after)))
            }
            Decision::Allowed { .. } => {
                match limiters.auth_failures.peek(Subject::Address(ip), now) {
                    Decision::Limited { retry_after } => Some((
                        "auth_failures",
                        limited(&*limiters.auth_failures, retry_after),
                    )),
                    Decision::Allowed { .. } => None,
                }
            }
        };
        if let Some((which, rejection)) = refusal {
            // The audit layer records the security event; this says which budget ran out.
            tracing::debug!(client = %ip, limit = which, "rate limit reached");
            return Err(rejection);
        }
        Ok((limiters.auth_failures.clone(), ip))
    }

    fn after((auth_failures, ip): Self::Carry, response: &mut Response) {
        if response.status() == StatusCode::UNAUTHORIZED {
            auth_failures.check(Subject::Address(ip), Instant::now());
        }
    }
}
