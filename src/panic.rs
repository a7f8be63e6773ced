//! [`CatchPanicLayer`]: a panic while a request is handled becomes a 500 with the generic
//! body, and the server keeps serving (the panic message goes to the diagnostic log through the
//! panic hook, never to the client).
//!
//! Why not tower-http's `CatchPanic`: it boxes every response body into its own body type, which
//! axum then boxes again, two allocations on every request for the rare one that panics. This
//! one keeps the response as it is.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::Rejection;

/// Catches panics in the service beneath, in `call` and in every poll of its future.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic(inner)
    }
}

/// The service of a [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<S>(S);

impl<S> Service<Request> for CatchPanic<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CatchPanicFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match catch_unwind(AssertUnwindSafe(|| self.0.call(request))) {
            Ok(future) => CatchPanicFuture::Running { future },
            Err(_) => CatchPanicFuture::Panicked,
        }
    }
}

pin_project! {
    /// The future of a [`CatchPanic`] service.
    #[project = CatchPanicProj]
    pub enum CatchPanicFuture<F> {
        Running { #[pin] future: F },
        Panicked,
    }
}

impl<F, E> Future for CatchPanicFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let internal = || Poll::Ready(Ok(Rejection::Internal.into_response()));
        match self.project() {
            CatchPanicProj::Running { future } => {
                catch_unwind(AssertUnwindSafe(|| future.poll(cx))).unwrap_or_else(|_| internal())
            }
            CatchPanicProj::Panicked => internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use std::convert::Infallible;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panic_in_call_or_in_poll_is_a_500_and_the_service_still_answers() {
        let service = tower::service_fn(|request: Request| {
            assert!(request.uri().path() != "/call", "in call");
            async move {
                assert!(request.uri().path() != "/poll", "in poll");
                Ok::<_, Infallible>(StatusCode::OK.into_response())
            }
        });
        let service = CatchPanicLayer.layer(service);
        for (path, status) in [
            ("/call", StatusCode::INTERNAL_SERVER_ERROR),
            ("/poll", StatusCode::INTERNAL_SERVER_ERROR),
            ("/fine", StatusCode::OK),
        ] {
            let request = Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request");
            let response = service.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), status, "{path}");
        }
    }
}
