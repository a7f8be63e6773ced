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

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

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

/// The CORS layer for a policy.
pub fn layer(policy: Arc<OriginPolicy>) -> CorsLayer {
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
