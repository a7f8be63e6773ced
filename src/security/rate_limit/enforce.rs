//! [`EnforceLimits`]: the layer that asks the limiters about every request.
//!
//! Not a [`crate::policy::RequestPolicy`]: a shared store may need a round trip to Redis
//! before it can decide ([`super::Acquire::Wait`]), so the request may have to wait. The
//! in-process store always decides at once, and then this layer costs what a policy does: no
//! allocation, no boxing.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};

use super::{Acquire, Decision, Limiters, RateLimitStore, Subject, limited};
use crate::error::Rejection;
use crate::security::client_ip::client_ip;

/// 429 for a client over its request budget, or one that failed authentication too often this
/// window (even with a valid key now); counts every 401 it lets through.
#[derive(Debug, Clone)]
pub struct EnforceLimits(pub Limiters);

impl<S> Layer<S> for EnforceLimits {
    type Service = EnforceLimitsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EnforceLimitsService {
            limiters: self.0.clone(),
            inner,
        }
    }
}

/// The service of [`EnforceLimits`].
#[derive(Debug, Clone)]
pub struct EnforceLimitsService<S> {
    limiters: Limiters,
    inner: S,
}

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

impl<S> Service<Request> for EnforceLimitsService<S>
where
    S: Service<Request, Response = Response> + Clone,
{
    type Response = Response;
    type Error = S::Error;
    type Future = EnforceFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let ip = client_ip(request.extensions()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let now = Instant::now();
        match self.limiters.requests.acquire(Subject::Address(ip), now) {
            Acquire::Ready(budget) => match self.limiters.judge(budget, ip, now) {
                Ok(carry) => EnforceFuture::Inner {
                    future: self.inner.call(request),
                    carry: Some(carry),
                },
                Err(rejection) => EnforceFuture::Answered {
                    response: Some(rejection.into_response()),
                },
            },
            // The service that was made ready goes with the request; this one takes a clone.
            Acquire::Wait(pending) => {
                let ready = self.inner.clone();
                EnforceFuture::Waiting {
                    pending,
                    rest: Some((std::mem::replace(&mut self.inner, ready), request)),
                    limiters: self.limiters.clone(),
                    ip,
                }
            }
        }
    }
}

pin_project! {
    /// The future of an [`EnforceLimitsService`].
    #[project = EnforceFutureProj]
    pub enum EnforceFuture<S: Service<Request>> {
        Answered { response: Option<Response> },
        Waiting {
            pending: Pin<Box<dyn Future<Output = Decision> + Send>>,
            rest: Option<(S, Request)>,
            limiters: Limiters,
            ip: IpAddr,
        },
        Inner { #[pin] future: S::Future, carry: Option<Carry> },
    }
}

impl<S> Future for EnforceFuture<S>
where
    S: Service<Request, Response = Response>,
{
    type Output = Result<Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                // Polled again after completion (a caller's bug): a generic 500, never a panic.
                EnforceFutureProj::Answered { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .unwrap_or_else(|| Rejection::Internal.into_response())));
                }
                EnforceFutureProj::Waiting {
                    pending,
                    rest,
                    limiters,
                    ip,
                } => {
                    let budget = ready!(pending.as_mut().poll(cx));
                    let next = match (limiters.judge(budget, *ip, Instant::now()), rest.take()) {
                        (Ok(carry), Some((mut inner, request))) => EnforceFuture::Inner {
                            future: inner.call(request),
                            carry: Some(carry),
                        },
                        (Err(rejection), _) => EnforceFuture::Answered {
                            response: Some(rejection.into_response()),
                        },
                        (Ok(_), None) => EnforceFuture::Answered { response: None },
                    };
                    self.set(next);
                }
                EnforceFutureProj::Inner { future, carry } => {
                    let response = ready!(future.poll(cx))?;
                    if let Some((auth_failures, ip)) = carry.take()
                        && response.status() == StatusCode::UNAUTHORIZED
                    {
                        auth_failures.check(Subject::Address(ip), Instant::now());
                    }
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
