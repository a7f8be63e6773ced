//! [`WaitingPolicy`]: a [`crate::policy::RequestPolicy`] that may have to wait before it can
//! decide (a lease from the fleet's Redis, an identity provider's keys), and
//! [`WaitingPolicyLayer`], which makes one a tower layer.
//!
//! A policy that decides at once costs what a `RequestPolicy` does: a named future, no
//! allocation. One that waits hands over a boxed future; the request and the service that was
//! made ready wait with it (the service keeps a clone for the next request).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::Rejection;

/// What to wait for before deciding.
pub type Pending<O> = Pin<Box<dyn Future<Output = O> + Send>>;

/// What [`WaitingPolicy::before`] decided.
pub enum Step<C, O> {
    /// Let the request through, with what `after` needs.
    Pass(C),
    /// The answer: the request goes no further.
    Answer(Response),
    /// Decide in [`WaitingPolicy::resume`] once this is ready.
    Wait(Pending<O>),
}

/// A request policy that may wait.
pub trait WaitingPolicy: Clone + Send + Sync + 'static {
    /// What a passed request hands to [`after`](WaitingPolicy::after).
    type Carry: Send + 'static;
    /// What a wait yields.
    type Outcome: Send + 'static;

    /// Looks at (and may amend) the request: pass it, answer it, or wait.
    fn before(&self, request: &mut Request) -> Step<Self::Carry, Self::Outcome>;

    /// Decides once the wait is over (and may wait again).
    fn resume(
        &self,
        outcome: Self::Outcome,
        request: &mut Request,
    ) -> Step<Self::Carry, Self::Outcome>;

    /// Looks at (and may amend) the response from the layers beneath.
    fn after(carry: Self::Carry, response: &mut Response);
}

/// A [`WaitingPolicy`] as a tower layer.
#[derive(Debug, Clone)]
pub struct WaitingPolicyLayer<P>(pub P);

impl<P: Clone, S> Layer<S> for WaitingPolicyLayer<P> {
    type Service = WaitingPolicyService<P, S>;

    fn layer(&self, inner: S) -> Self::Service {
        WaitingPolicyService {
            policy: self.0.clone(),
            inner,
        }
    }
}

/// The service of a [`WaitingPolicyLayer`].
#[derive(Debug, Clone)]
pub struct WaitingPolicyService<P, S> {
    policy: P,
    inner: S,
}

impl<P, S> Service<Request> for WaitingPolicyService<P, S>
where
    P: WaitingPolicy,
    S: Service<Request, Response = Response> + Clone,
{
    type Response = Response;
    type Error = S::Error;
    type Future = WaitingFuture<P, S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.policy.before(&mut request) {
            Step::Pass(carry) => WaitingFuture::Inner {
                future: self.inner.call(request),
                carry: Some(carry),
            },
            Step::Answer(response) => WaitingFuture::Answered {
                response: Some(response),
            },
            // The service that was made ready goes with the request; this one takes a clone.
            Step::Wait(pending) => {
                let ready = self.inner.clone();
                WaitingFuture::Waiting {
                    pending,
                    rest: Some((
                        std::mem::replace(&mut self.inner, ready),
                        request,
                        self.policy.clone(),
                    )),
                }
            }
        }
    }
}

pin_project! {
    /// The future of a [`WaitingPolicyService`].
    #[project = WaitingFutureProj]
    pub enum WaitingFuture<P: WaitingPolicy, S: Service<Request>> {
        Answered { response: Option<Response> },
        Waiting { pending: Pending<P::Outcome>, rest: Option<(S, Request, P)> },
        Inner { #[pin] future: S::Future, carry: Option<P::Carry> },
    }
}

impl<P, S> Future for WaitingFuture<P, S>
where
    P: WaitingPolicy,
    S: Service<Request, Response = Response>,
{
    type Output = Result<Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                // Polled again after completion (a caller's bug): a generic 500, never a panic.
                WaitingFutureProj::Answered { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .unwrap_or_else(|| Rejection::Internal.into_response())));
                }
                WaitingFutureProj::Waiting { pending, rest } => {
                    let outcome = ready!(pending.as_mut().poll(cx));
                    let next = match rest.take() {
                        Some((mut inner, mut request, policy)) => {
                            match policy.resume(outcome, &mut request) {
                                Step::Pass(carry) => Self::Inner {
                                    future: inner.call(request),
                                    carry: Some(carry),
                                },
                                Step::Answer(response) => Self::Answered {
                                    response: Some(response),
                                },
                                Step::Wait(pending) => Self::Waiting {
                                    pending,
                                    rest: Some((inner, request, policy)),
                                },
                            }
                        }
                        None => Self::Answered { response: None },
                    };
                    self.set(next);
                }
                WaitingFutureProj::Inner { future, carry } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(carry) = carry.take() {
                        P::after(carry, &mut response);
                    }
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
