//! [`EnforceLimits`]: the layer that asks the limiters about every request.
//!
//! A [`WaitingPolicy`], not a [`crate::policy::RequestPolicy`]: a shared store may need a
//! round trip to Redis before it can decide ([`super::Acquire::Wait`]). The in-process store
//! always decides at once, and then this layer costs what a policy does: no allocation.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::{Acquire, Decision, Limiters, RateLimitStore, Subject, limited};
use crate::error::Rejection;
use crate::policy_wait::{Step, WaitingPolicy};
use crate::security::client_ip::client_ip;

/// 429 for a client over its request budget, or one that failed authentication too often this
/// window (even with a valid key now); counts every 401 it lets through.
#[derive(Debug, Clone)]
pub struct EnforceLimits(pub Limiters);

/// The failed-authentication limiter and the client, to count a 401.
type Carry = (Arc<dyn RateLimitStore>, IpAddr);

impl Limiters {
    /// The answer to a client the request budget let through (`Allowed`) or not.
    fn judge(&self, budget: Decision, ip: IpAddr, now: Instant) -> Result<Carry, Rejection> {
        let refusal = match budget {
            Decision::Limited { retry_after } => {
                Some(("requests", limited(&*self.requests, retry_after)))
            }
            Decision::Allowed { .. } => match self.auth_failures.peek(Subject::Address(ip), now) {
                Decision::Limited { retry_after } => {
                    Some(("auth_failures", limited(&*self.auth_failures, retry_after)))
                }
                Decision::Allowed { .. } => None,
            },
        };
        if let Some((which, rejection)) = refusal {
            // The audit layer records the security event; this says which budget ran out.
            tracing::debug!(client = %ip, limit = which, "rate limit reached");
            return Err(rejection);
        }
        Ok((self.auth_failures.clone(), ip))
    }
}

impl WaitingPolicy for EnforceLimits {
    type Carry = Carry;
    type Outcome = Decision;

    fn before(&self, request: &mut Request) -> Step<Carry, Decision> {
        let ip = address(request);
        let now = Instant::now();
        match self.0.requests.acquire(Subject::Address(ip), now) {
            Acquire::Ready(budget) => match self.0.judge(budget, ip, now) {
                Ok(carry) => Step::Pass(carry),
                Err(rejection) => Step::Answer(rejection.into_response()),
            },
            Acquire::Wait(pending) => Step::Wait(pending),
        }
    }

    fn resume(&self, budget: Decision, request: &mut Request) -> Step<Carry, Decision> {
        match self.0.judge(budget, address(request), Instant::now()) {
            Ok(carry) => Step::Pass(carry),
            Err(rejection) => Step::Answer(rejection.into_response()),
        }
    }

    fn after((auth_failures, ip): Carry, response: &mut Response) {
        if response.status() == StatusCode::UNAUTHORIZED {
            auth_failures.check(Subject::Address(ip), Instant::now());
        }
    }
}

/// The client address the limits count under.
fn address(request: &Request) -> IpAddr {
    client_ip(request.extensions()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}
