//! Per-client rate limiting, and where its counts live.
//!
//! Threat: one client (or one IPv6 /64) flooding the server, or guessing keys.
//!
//! [`EnforceLimits`] answers 429 for a client over its request budget, or one that failed
//! authentication too often this window (even with a valid key now), and counts every 401 it
//! lets through. It asks a [`RateLimitStore`] for each decision: today the in-process sliding
//! window of [`sliding`] (its guarantee and memory bound are in that module's doc); a store
//! shared by several instances is another implementation of the same trait.

mod enforce;
pub mod sliding;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Rejection;

pub use enforce::EnforceLimits;
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

/// A decision now, or one that needs a round trip elsewhere first (a shared store without a
/// lease; see [`crate::fleet::lease`]).
pub enum Acquire {
    Ready(Decision),
    Wait(std::pin::Pin<Box<dyn std::future::Future<Output = Decision> + Send>>),
}

impl Acquire {
    /// The decision, once there is one.
    pub async fn decision(self) -> Decision {
        match self {
            Self::Ready(decision) => decision,
            Self::Wait(pending) => pending.await,
        }
    }
}

/// Where a limiter keeps its counts, and decides. Every method is cheap: it runs on the
/// request path, before the body is read; only [`acquire`](RateLimitStore::acquire) may ask
/// for a wait, and only a shared store does.
pub trait RateLimitStore: std::fmt::Debug + Send + Sync + 'static {
    /// The limit, window and client grouping this store enforces.
    fn policy(&self) -> Policy;

    /// Counts one request from `subject` at `now` if it fits.
    fn check(&self, subject: Subject<'_>, now: Instant) -> Decision;

    /// Counts one request from `subject` at `now` if it fits, where the caller can wait for
    /// the decision. The in-process store decides at once.
    fn acquire(&self, subject: Subject<'_>, now: Instant) -> Acquire {
        Acquire::Ready(self.check(subject, now))
    }

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

    /// Both limiters as budgets shared by `fleet` (see [`crate::fleet::lease`]).
    pub fn shared(
        fleet: &crate::fleet::Fleet,
        requests: Policy,
        auth_failures: Policy,
        epoch: Instant,
    ) -> Self {
        use crate::fleet::LeasedStore;
        Self {
            requests: Arc::new(LeasedStore::new(fleet, "requests", requests, epoch)),
            auth_failures: Arc::new(LeasedStore::new(fleet, "auth", auth_failures, epoch)),
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
