//! CORS, built from the same [`OriginPolicy`] as the `Origin` check, so the two can never
//! disagree.
//!
//! - Only origins the policy allows get `Access-Control-Allow-Origin`, and it always echoes
//!   that exact origin: never `*`, never an unlisted origin.
//! - Preflights (`OPTIONS`) are answered by this layer, outside authentication: a browser sends
//!   them without credentials.
//! - The MCP request headers are allowed (a wildcard would not cover `Authorization`), and
//!   `Mcp-Session-Id` and `WWW-Authenticate` are exposed to scripts.
//! - No credentials mode: the key travels in `Authorization`, never in a cookie.
//! - Only requests a browser could have made cross-origin (an `Origin` header, or `OPTIONS`)
//!   go through tower-http's CORS service, which builds its headers on every call; the others
//!   (curl, native clients, the SDKs) get just the same `Vary` header, so a cache keeps the two
//!   kinds of answer apart.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::security::origin::OriginPolicy;

/// The request headers a browser client may send.
pub const ALLOWED_HEADERS: [&str; 8] = [
    "authorization",
    "content-type",
    "accept",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "mcp-session-id",
    "last-event-id",
];

/// What tower-http's CORS service puts in `Vary` for this configuration (only the allowed origin
/// depends on the request; methods and headers are fixed lists), for the requests that skip it.
const VARY: &str = "origin";

/// The CORS layer for a policy.
pub fn layer(policy: Arc<OriginPolicy>) -> BrowserCorsLayer {
    BrowserCorsLayer(cors(policy))
}

fn cors(policy: Arc<OriginPolicy>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| policy.origin_allowed(o))
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers([
            HeaderName::from_static("mcp-session-id"),
            header::WWW_AUTHENTICATE,
        ])
        .max_age(Duration::from_secs(600))
}

/// CORS for the requests a browser could have made cross-origin; see the module doc.
#[derive(Debug, Clone)]
pub struct BrowserCorsLayer(CorsLayer);

impl<S: Clone> Layer<S> for BrowserCorsLayer {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserCors {
            cors: self.0.layer(inner.clone()),
            plain: inner,
        }
    }
}

/// The service of a [`BrowserCorsLayer`].
#[derive(Debug, Clone)]
pub struct BrowserCors<S> {
    cors: Cors<S>,
    plain: S,
}

impl<S> Service<Request> for BrowserCors<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BrowserCorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.cors.poll_ready(cx))?;
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == Method::OPTIONS || request.headers().contains_key(header::ORIGIN) {
            BrowserCorsFuture::Cors {
                future: self.cors.call(request),
            }
        } else {
            BrowserCorsFuture::Plain {
                future: self.plain.call(request),
            }
        }
    }
}

pin_project! {
    /// The future of a [`BrowserCors`] service.
    #[project = BrowserCorsProj]
    pub enum BrowserCorsFuture<F> {
        Cors { #[pin] future: tower_http::cors::ResponseFuture<F> },
        Plain { #[pin] future: F },
    }
}

impl<F, E> Future for BrowserCorsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BrowserCorsProj::Cors { future } => future.poll(cx),
            BrowserCorsProj::Plain { future } => {
                let mut response = ready!(future.poll(cx))?;
                response
                    .headers_mut()
                    .append(header::VARY, HeaderValue::from_static(VARY));
                Poll::Ready(Ok(response))
            }
        }
    }
}
