//! [`RequestPolicy`]: the shape of every request policy in this server (look at the request, answer it
//! or let it through, then look at the response), and [`PolicyLayer`], which makes one a tower
//! layer.
//!
//! Why not `axum::middleware::from_fn`: it boxes the inner service and the future on every
//! request (about four allocations a layer). With five policies that was a fifth of the
//! instructions of a `tools/list` request (BENCHMARKS.md). Here the service is generic over the
//! one beneath it and the future is an enum with a name: no allocation, no dynamic dispatch.
//!
//! A policy that answers a request itself does not call the service beneath it. Every service
//! this server stacks is always ready, so the readiness it reported is not held by anything.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::Rejection;

/// A request policy.
pub trait RequestPolicy: Clone + Send + Sync + 'static {
    /// What [`before`](RequestPolicy::before) hands to [`after`](RequestPolicy::after).
    type Carry: Send + 'static;

    /// Looks at (and may amend) the request; `Err` is the answer, and the request goes no
    /// further.
    fn before(&self, request: &mut Request) -> Result<Self::Carry, Rejection>;

    /// Looks at (and may amend) the response from the layers beneath.
    fn after(carry: Self::Carry, response: &mut Response);
}

/// A [`RequestPolicy`] as a tower layer.
#[derive(Debug, Clone)]
pub struct PolicyLayer<P>(pub P);

impl<P: Clone, S> Layer<S> for PolicyLayer<P> {
    type Service = PolicyService<P, S>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            policy: self.0.clone(),
            inner,
        }
    }
}

/// The service of a [`PolicyLayer`].
#[derive(Debug, Clone)]
pub struct PolicyService<P, S> {
    policy: P,
    inner: S,
}

impl<P, S> Service<Request> for PolicyService<P, S>
where
    P: RequestPolicy,
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = PolicyFuture<P, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.policy.before(&mut request) {
            Ok(carry) => PolicyFuture::Inner {
                future: self.inner.call(request),
                carry: Some(carry),
            },
            Err(rejection) => PolicyFuture::Answered {
                response: Some(rejection.into_response()),
            },
        }
    }
}

pin_project! {
    /// The future of a [`PolicyService`].
    #[project = PolicyFutureProj]
    pub enum PolicyFuture<P: RequestPolicy, F> {
        Answered { response: Option<Response> },
        Inner { #[pin] future: F, carry: Option<P::Carry> },
    }
}

impl<P, F, E> Future for PolicyFuture<P, F>
where
    P: RequestPolicy,
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            // Polled again after completion (a caller's bug): a generic 500, never a panic.
            PolicyFutureProj::Answered { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| Rejection::Internal.into_response()))),
            PolicyFutureProj::Inner { future, carry } => {
                let mut response = ready!(future.poll(cx))?;
                if let Some(carry) = carry.take() {
                    P::after(carry, &mut response);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{HeaderValue, StatusCode};
    use std::convert::Infallible;
    use tower::ServiceExt;

    /// Refuses requests without `x-pass`, and tags the responses it let through.
    #[derive(Clone)]
    struct NeedsPass;

    impl RequestPolicy for NeedsPass {
        type Carry = &'static str;

        fn before(&self, request: &mut Request) -> Result<&'static str, Rejection> {
            if request.headers().contains_key("x-pass") {
                request
                    .headers_mut()
                    .insert("x-seen", HeaderValue::from_static("1"));
                Ok("passed")
            } else {
                Err(Rejection::ForbiddenOrigin)
            }
        }

        fn after(carry: &'static str, response: &mut Response) {
            response
                .headers_mut()
                .insert("x-tag", HeaderValue::from_static(carry));
        }
    }

    async fn run(request: Request) -> (StatusCode, Option<String>) {
        let inner = tower::service_fn(|request: Request| async move {
            let seen = request.headers().contains_key("x-seen");
            Ok::<_, Infallible>(if seen {
                StatusCode::OK.into_response()
            } else {
                StatusCode::IM_A_TEAPOT.into_response()
            })
        });
        let response = PolicyLayer(NeedsPass)
            .layer(inner)
            .oneshot(request)
            .await
            .expect("infallible");
        let tag = response
            .headers()
            .get("x-tag")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        (response.status(), tag)
    }

    #[tokio::test]
    async fn before_answers_or_amends_and_after_sees_only_inner_responses() {
        let refused = Request::new(Body::empty());
        assert_eq!(run(refused).await, (StatusCode::FORBIDDEN, None));
        let passed = Request::builder()
            .header("x-pass", "1")
            .body(Body::empty())
            .expect("request");
        assert_eq!(run(passed).await, (StatusCode::OK, Some("passed".into())));
    }
}
