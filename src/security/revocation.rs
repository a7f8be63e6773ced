//! What a key's revocation and its stream budget mean for requests already past the key check.
//!
//! [`KeyBoundLayer`] sits right beneath the key policy. For every authenticated request:
//! - while the handler runs, the key's revocation token is watched: when a reload removes the
//!   key, the request ends with 401 (`invalid_token`) and its work is dropped, instead of
//!   finishing on a key that is no longer accepted;
//! - a response that is an event stream (`text/event-stream`: a GET stream, a
//!   `subscriptions/listen` stream, a streamed tool result) takes one of the key's
//!   `--max-streams-per-key` stream slots for as long as its body lives. With none free, the
//!   response is replaced by 429 and the stream's work is dropped with it. The body ends cleanly
//!   (the SSE stream is closed, not cut) as soon as the key is revoked.
//!
//! Decisions: the watch is set up only once the handler is pending (answers that are ready at
//! once cost nothing), inside the future (no allocation), and only stream bodies are wrapped
//! (one allocation per stream), so the JSON path allocates nothing here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use pin_project_lite::pin_project;
use tokio_util::sync::WaitForCancellationFutureOwned;
use tower::{Layer, Service};

use crate::error::Rejection;
use crate::security::auth::{Authenticated, KeyGrant, StreamSlot};

/// Binds requests to the life of their key; at most `max_streams` streams per key.
#[derive(Debug, Clone, Copy)]
pub struct KeyBoundLayer {
    pub max_streams: usize,
}

impl<S> Layer<S> for KeyBoundLayer {
    type Service = KeyBound<S>;

    fn layer(&self, inner: S) -> KeyBound<S> {
        KeyBound {
            inner,
            max_streams: self.max_streams,
        }
    }
}

/// The service of a [`KeyBoundLayer`].
#[derive(Debug, Clone)]
pub struct KeyBound<S> {
    inner: S,
    max_streams: usize,
}

impl<S> Service<Request> for KeyBound<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = KeyBoundFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let auth = request.extensions().get::<Authenticated>();
        let grant = auth.map(|a| a.grant.clone());
        let expires = auth.and_then(|a| a.expires);
        // The key's own cap (a policy's `max_streams`) replaces the server-wide one.
        let max_streams = auth
            .and_then(|a| a.rules.max_streams)
            .unwrap_or(self.max_streams);
        KeyBoundFuture {
            inner: self.inner.call(request),
            grant,
            revoked: None,
            max_streams,
            expires,
        }
    }
}

pin_project! {
    /// The future of a [`KeyBound`] service.
    pub struct KeyBoundFuture<F> {
        #[pin]
        inner: F,
        grant: Option<Arc<KeyGrant>>,
        #[pin]
        revoked: Option<WaitForCancellationFutureOwned>,
        max_streams: usize,
        expires: Option<tokio::time::Instant>,
    }
}

impl<F, E> Future for KeyBoundFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(grant) = this.grant.as_ref() else {
            return this.inner.poll(cx);
        };
        if let Poll::Ready(result) = this.inner.poll(cx) {
            let response = result?;
            return Poll::Ready(Ok(bind_stream(
                response,
                grant,
                *this.max_streams,
                *this.expires,
            )));
        }
        // Set up the watch the first time the handler is pending, inline (no allocation).
        if this.revoked.is_none() {
            this.revoked
                .set(Some(grant.revoked().clone().cancelled_owned()));
        }
        if let Some(revoked) = this.revoked.as_pin_mut() {
            ready!(revoked.poll(cx));
        }
        Poll::Ready(Ok(Rejection::InvalidCredentials.into_response()))
    }
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// A stream response holds a slot of its key and ends when the key is revoked, or when the
/// credential it was opened with expires (a token's `exp`).
fn bind_stream(
    response: Response,
    grant: &Arc<KeyGrant>,
    max_streams: usize,
    expires: Option<tokio::time::Instant>,
) -> Response {
    if !is_event_stream(&response) {
        return response;
    }
    if grant.revoked().is_cancelled() {
        return Rejection::InvalidCredentials.into_response();
    }
    let Some(slot) = grant.open_stream(max_streams) else {
        return Rejection::StreamLimit.into_response();
    };
    let revoked = Box::pin(grant.revoked().clone().cancelled_owned());
    let expiry = expires.map(|at| Box::pin(tokio::time::sleep_until(at)));
    response.map(|body| {
        Body::new(KeyBoundBody {
            inner: body,
            revoked,
            expiry,
            _slot: slot,
        })
    })
}

pin_project! {
    /// A stream body that holds its key's slot and ends when the key is revoked.
    struct KeyBoundBody {
        #[pin]
        inner: Body,
        revoked: Pin<Box<WaitForCancellationFutureOwned>>,
        expiry: Option<Pin<Box<tokio::time::Sleep>>>,
        _slot: StreamSlot,
    }
}

impl http_body::Body for KeyBoundBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        if this.revoked.as_mut().poll(cx).is_ready()
            || this
                .expiry
                .as_mut()
                .is_some_and(|at| at.as_mut().poll(cx).is_ready())
        {
            return Poll::Ready(None);
        }
        this.inner.poll_frame(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::time::Duration;

    use axum::http::{HeaderValue, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::security::auth::KeyId;

    fn stream_response() -> Response {
        let body = futures_util::stream::pending::<Result<Bytes, Infallible>>();
        let mut r = Response::new(Body::from_stream(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        r
    }

    fn request(auth: &Authenticated) -> Request {
        let mut r = Request::new(Body::empty());
        r.extensions_mut().insert(auth.clone());
        r
    }

    #[tokio::test]
    async fn a_key_holds_at_most_its_streams_and_gets_a_slot_back_when_one_closes() {
        let auth = Authenticated::new(KeyId::new("k"));
        let svc = KeyBoundLayer { max_streams: 2 }.layer(tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(stream_response())
        }));
        let first = svc.clone().oneshot(request(&auth)).await.expect("1");
        let second = svc.clone().oneshot(request(&auth)).await.expect("2");
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(second.status(), StatusCode::OK);
        let third = svc.clone().oneshot(request(&auth)).await.expect("3");
        assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
        let other = Authenticated::new(KeyId::new("other"));
        let theirs = svc.clone().oneshot(request(&other)).await.expect("other");
        assert_eq!(theirs.status(), StatusCode::OK, "another key is unaffected");
        drop(first);
        assert_eq!(auth.grant.streams(), 1);
        let again = svc.clone().oneshot(request(&auth)).await.expect("again");
        assert_eq!(again.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn revoking_the_key_ends_its_streams_cleanly_and_its_requests_with_401() {
        let auth = Authenticated::new(KeyId::new("k"));
        let streams =
            KeyBoundLayer { max_streams: 8 }.layer(tower::service_fn(|_: Request| async {
                Ok::<_, Infallible>(stream_response())
            }));
        let stream = streams.oneshot(request(&auth)).await.expect("stream");
        let slow = KeyBoundLayer { max_streams: 8 }.layer(tower::service_fn(|_: Request| async {
            std::future::pending::<()>().await;
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let in_flight = tokio::spawn(slow.oneshot(request(&auth)));
        tokio::task::yield_now().await;
        auth.grant.revoked().cancel();
        let refused = tokio::time::timeout(Duration::from_secs(1), in_flight)
            .await
            .expect("ends within a second")
            .expect("task")
            .expect("response");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        // the stream's body ends (no error: a clean close), and its slot is free
        let collected = tokio::time::timeout(Duration::from_secs(1), stream.into_body().collect())
            .await
            .expect("ends within a second");
        assert!(collected.is_ok());
        assert_eq!(auth.grant.streams(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_opened_with_a_token_ends_when_the_token_expires() {
        let mut auth = Authenticated::new(KeyId::new("k"));
        auth.expires = Some(tokio::time::Instant::now() + Duration::from_secs(300));
        let svc = KeyBoundLayer { max_streams: 8 }.layer(tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(stream_response())
        }));
        let mut body = svc
            .oneshot(request(&auth))
            .await
            .expect("stream")
            .into_body();
        let early = tokio::time::timeout(Duration::from_secs(299), body.frame()).await;
        assert!(early.is_err(), "still open before the token expires");
        let ended = tokio::time::timeout(Duration::from_secs(2), body.frame())
            .await
            .expect("ends when the token expires");
        assert!(ended.is_none(), "a clean end");
        drop(body);
        assert_eq!(auth.grant.streams(), 0);
    }

    #[tokio::test]
    async fn plain_responses_take_no_slot() {
        let auth = Authenticated::new(KeyId::new("k"));
        let svc = KeyBoundLayer { max_streams: 1 }.layer(tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(Response::new(Body::from("{}")))
        }));
        for _ in 0..3 {
            let r = svc.clone().oneshot(request(&auth)).await.expect("r");
            assert_eq!(r.status(), StatusCode::OK);
        }
        assert_eq!(auth.grant.streams(), 0);
    }
}
