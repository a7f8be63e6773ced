//! The application: [`router`], which lists every layer a request passes, outermost first,
//! and the small handlers of `/health` and `/metrics`. The shared state is [`crate::state`].

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::get;
use futures_util::future::Either;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::Rejection;
use crate::mcp::transport::{self, McpPost};
use crate::observability::audit::Audit;
use crate::panic::CatchPanicLayer;
use crate::policy::PolicyLayer;
use crate::policy_wait::WaitingPolicyLayer;
use crate::security::auth::RequireCredential;
use crate::security::client_ip::ResolveClientIp;
use crate::security::cors;
use crate::security::origin::RequireAllowedOrigin;
use crate::security::rate_limit::EnforceLimits;
use crate::security::revocation::KeyBoundLayer;
pub use crate::state::{AppParts, AppState, Limits};

/// Every route and every layer, outermost first:
///
/// ```text
/// sensitive headers  Authorization and cookies are marked sensitive before anything can log them
/// client address     the one place the client IP is decided (forwarded headers only from
///                    trusted proxies); everything below reads it
/// audit              one audit event per request (status, latency, key id, client, MCP method)
/// catch panic        a panic becomes a 500 with a generic body; the server keeps serving
/// timeout            a bound on every request, body upload included (408)
/// rate limit         per client, 429 + Retry-After; before auth so key guessing is throttled,
///                    and a client with too many failed authentications is refused outright;
///                    before CORS so preflights (OPTIONS) count too and cannot be flooded
///                    (a browser then sees the 429 without CORS headers, as a network error)
/// CORS               answers preflights before the other checks (browsers send them without
///                    credentials), and grants only origins the Origin policy allows
/// -- /mcp only --
/// Origin/Host        403 for a foreign Origin or Host (DNS rebinding), before auth
/// auth               401 + WWW-Authenticate: Bearer; inserts Authenticated { key_id, grant }
/// key bound          a revoked key's requests end with 401 and its streams close; at most
///                    --max-streams-per-key event streams per key (429)
/// body limit         413 above --max-body
/// transport          415 / 406 / 400 / 404 / 202 / 405, JSON or SSE
/// ```
/// `/health` sits outside auth and the Origin check: uptime checks need no key, and it says
/// only `{"status":"ok"}`. It is still rate limited. `/health/details` and `/metrics` need a
/// key like `/mcp` (unless `--metrics-bind` serves `/metrics` on its own listener).
pub fn router(state: AppState, limits: Limits) -> impl HttpService {
    // The `/mcp` policies, built once: they stand in front of both `POST /mcp` and the axum
    // routes below, so the two paths cannot drift apart.
    let mcp_policies = tower::ServiceBuilder::new()
        // 403 for a foreign Origin or Host before a key is looked at (DNS rebinding).
        .layer(PolicyLayer(RequireAllowedOrigin(state.origin.clone())))
        // 401 without a valid key or token (403 for a token short of a scope); every later
        // layer reads `Authenticated`.
        .layer(WaitingPolicyLayer(RequireCredential {
            keys: state.keys.clone(),
            api_keys: state.api_keys,
            tokens: state.tokens.clone(),
            policies: state.policies.clone(),
        }))
        // A revoked key's requests end (401) and its streams close; the key's stream cap.
        .layer(KeyBoundLayer {
            max_streams: limits.max_streams_per_key,
        });
    let mut keyed = Router::new()
        .route(
            "/mcp",
            get(transport::get)
                .delete(transport::delete)
                .fallback(method_not_allowed),
        )
        .route("/health/details", get(health_details));
    if !state.metrics_elsewhere {
        keyed = keyed.route("/metrics", get(metrics));
    }
    let keyed = keyed.route_layer(
        mcp_policies
            .clone()
            // 413 above --max-body (`POST /mcp` checks its own body against the same limit).
            .layer(DefaultBodyLimit::max(limits.max_body)),
    );
    // `POST /mcp`, nearly every request, skips axum's routing (its boxing and cloning per
    // request) and meets the same policies around its own service.
    let mcp_post = mcp_policies.service(McpPost {
        state: state.clone(),
        max_body: limits.max_body,
    });
    let limiters = state.limiters.clone();
    let cors = cors::layer(state.origin.clone());
    let client_ip = state.client_ip.clone();
    let observability = state.observability.clone();
    let mut public = Router::new().merge(keyed).route("/health", get(health));
    if let Some(tokens) = &state.tokens {
        // Protected Resource Metadata (RFC 9728): public, like /health.
        let path = tokens.metadata_path();
        if path != ROOT_METADATA {
            public = public.route(&path, get(resource_metadata));
        }
        public = public.route(ROOT_METADATA, get(resource_metadata_root));
    }
    let routes = Routes {
        mcp_post,
        rest: public.fallback(not_found).with_state(state),
    };
    // The outer layers wrap the routes as one service (rather than `Router::layer`, which would
    // wrap every route), and every layer has a named future: cloning the stack for a request
    // copies `Arc`s, and no layer allocates (the one box is `POST /mcp`'s handler future).
    tower::ServiceBuilder::new()
        // Before anything can log a request: its credentials are marked sensitive.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::PROXY_AUTHORIZATION,
            header::COOKIE,
        ]))
        // The one place the client address is decided; the audit and the limits read it.
        .layer(PolicyLayer(ResolveClientIp(client_ip)))
        // Outside everything that can refuse, so every refusal is audited too.
        .layer(PolicyLayer(Audit(observability)))
        // A panic below becomes a 500 the audit still sees.
        .layer(CatchPanicLayer)
        // Bounds every request, body upload included (408); streams have their own rules.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        // Before CORS and auth: preflights and key guessing are counted and throttled.
        .layer(WaitingPolicyLayer(EnforceLimits(limiters)))
        // Answers preflights without credentials; grants only allow-listed origins.
        .layer(cors)
        .service(routes)
}

/// What [`router`] returns and a connection is served with: a cloneable service that never
/// fails (a refusal is a response) and whose futures may move between threads.
pub trait HttpService:
    tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> HttpService for S where
    S: tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// `POST /mcp` to its own service, everything else to the axum router.
#[derive(Debug, Clone)]
struct Routes<P> {
    mcp_post: P,
    rest: Router,
}

impl<P> tower::Service<Request> for Routes<P>
where
    P: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<P::Future, RouteFuture<Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == Method::POST && request.uri().path() == "/mcp" {
            Either::Left(self.mcp_post.call(request))
        } else {
            Either::Right(self.rest.call(request))
        }
    }
}

/// Where clients look for the metadata of a resource at the root.
const ROOT_METADATA: &str = "/.well-known/oauth-protected-resource";

/// `GET /.well-known/oauth-protected-resource/<path of /mcp>`.
async fn resource_metadata(State(state): State<AppState>) -> Response {
    metadata_response(&state, false)
}

/// `GET /.well-known/oauth-protected-resource`.
async fn resource_metadata_root(State(state): State<AppState>) -> Response {
    metadata_response(&state, true)
}

/// The metadata document, readable by a browser client of any origin: it is public, carries
/// no credential, and a client must read it before it has a token (the one `*` this server
/// sends; `/mcp` keeps its allow-list).
fn metadata_response(state: &AppState, root: bool) -> Response {
    let Some(tokens) = &state.tokens else {
        return Rejection::NotFound.into_response();
    };
    let mut response = axum::Json(tokens.metadata(root)).into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        axum::http::HeaderValue::from_static("*"),
    );
    response
}

async fn health() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// `GET /health/details` (key required): what an operator checks first.
async fn health_details(State(state): State<AppState>) -> Response {
    let metrics = &state.observability.metrics;
    let audit = &state.observability.audit;
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "sessions": state.sessions.len(),
        "rateLimitClients": state.limiters.requests.tracked(),
        "connections": metrics.connections_open.get(),
        "memory": { "residentBytes": metrics.resident_bytes() },
        "cpuSeconds": metrics.cpu_seconds(),
        "audit": { "backlog": audit.backlog(), "dropped": audit.dropped() },
    }))
    .into_response()
}

/// `GET /metrics`: Prometheus / OpenMetrics text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.refresh_gauges();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.observability.metrics.render(),
    )
        .into_response()
}

/// The router of the separate metrics listener (`--metrics-bind`): `/metrics` only, no key.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    Rejection::NotFound.into_response()
}

async fn method_not_allowed() -> Response {
    Rejection::MethodNotAllowed {
        allow: "POST, DELETE",
    }
    .into_response()
}
