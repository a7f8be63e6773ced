//! The application: shared state, and [`router`], which lists every layer a request passes,
//! outermost first.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::get;
use futures_util::future::{BoxFuture, Either};
use tokio_util::sync::CancellationToken;
use tower_http::sensitive_headers::{SetSensitiveRequestHeaders, SetSensitiveRequestHeadersLayer};
use tower_http::timeout::{Timeout, TimeoutLayer};

use crate::config::Config;
use crate::error::Rejection;
use crate::mcp::dispatch::McpServer;
use crate::mcp::resources::{FileResources, Resources};
use crate::mcp::session::SessionStore;
use crate::mcp::transport::{self, McpPost};
use crate::observability::audit::{Audit, AuditSink, Observability};
use crate::observability::metrics::Metrics;
use crate::panic::{CatchPanic, CatchPanicLayer};
use crate::policy::{PolicyFuture, PolicyLayer, PolicyService};
use crate::security::auth::{ApiKeys, KeyRing, RequireKey};
use crate::security::client_ip::{ClientIpResolver, ResolveClientIp};
use crate::security::cors::{self, BrowserCors};
use crate::security::origin::{OriginPolicy, RequireAllowedOrigin};
use crate::security::rate_limit::{EnforceLimits, Limiters, RateLimiter};
use crate::security::revocation::{KeyBound, KeyBoundFuture, KeyBoundLayer};
use crate::tools::registry::ToolRegistry;
use crate::tools::sandbox::Sandbox;
use crate::tools::{fs, system};

/// What every handler and layer shares: one `Arc`, so the per-request clones axum makes of
/// every handler's state cost one atomic increment.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of the application state.
#[derive(Clone, Debug)]
pub struct AppParts {
    pub server: Arc<McpServer>,
    pub sessions: Arc<SessionStore>,
    pub keys: Arc<KeyRing>,
    pub limiters: Limiters,
    pub origin: Arc<OriginPolicy>,
    pub client_ip: Arc<ClientIpResolver>,
    pub observability: Observability,
    /// Fires when the server starts shutting down: long-lived streams end cleanly.
    pub shutdown: CancellationToken,
    pub started: tokio::time::Instant,
    /// `/metrics` is served on its own listener (without a key), not on the main router.
    pub metrics_elsewhere: bool,
}

/// The HTTP limits the router and the connection loop enforce.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body: usize,
    pub request_timeout: Duration,
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 client: its prefix).
    pub max_connections_per_ip: usize,
    /// The IPv6 prefix length that makes one client address.
    pub ipv6_prefix: u8,
    /// Open event streams per key.
    pub max_streams_per_key: usize,
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_ip: 64,
            ipv6_prefix: 64,
            max_streams_per_key: 32,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl AppState {
    /// Builds the state for a configuration: keys hashed, tools registered, schemas compiled.
    pub fn from_config(config: &Config) -> std::io::Result<Self> {
        let mut tools = ToolRegistry::new();
        let mut resources = Resources::default();
        if !config.allow_dirs.is_empty() {
            let sandbox = Arc::new(Sandbox::new(&config.allow_dirs)?);
            fs::register(&mut tools, sandbox.clone());
            resources.add(FileResources::new(sandbox));
        }
        tools.register(system::SystemInfo);
        let tool_names = tools.names();
        let audit = match &config.audit_log {
            Some(path) => AuditSink::to_file(path)?,
            None => AuditSink::to_log(),
        };
        let fixed = ApiKeys::from_plain(config.keys.keys.iter().cloned());
        let keys = KeyRing::new(fixed, config.keys_file.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let epoch = tokio::time::Instant::now();
        Ok(Self(Arc::new(AppParts {
            server: McpServer::new(tools, resources),
            sessions: Arc::new(SessionStore::with_quota(
                config.session_idle,
                config.max_sessions,
                config.max_sessions_per_key,
            )),
            keys: Arc::new(keys),
            limiters: Limiters {
                requests: Arc::new(RateLimiter::new(config.rate, epoch)),
                auth_failures: Arc::new(RateLimiter::new(config.auth_failures, epoch)),
            },
            origin: Arc::new(OriginPolicy::new(
                config.allow_origins.clone(),
                config.hosts.clone(),
                config.bind.ip().is_loopback(),
            )),
            client_ip: Arc::new(ClientIpResolver::new(
                config.trusted_proxies.clone(),
                config.forwarded_header,
            )),
            observability: Observability::new(Arc::new(audit), Arc::new(Metrics::new(tool_names)))
                .with_summary_window(config.rate.window),
            shutdown: CancellationToken::new(),
            started: tokio::time::Instant::now(),
            metrics_elsewhere: config.metrics_bind.is_some(),
        })))
    }

    /// Replaces the MCP server (an embedder's own tools, resources and prompts); the metrics
    /// learn the new tool names.
    pub fn with_server(self, server: Arc<McpServer>) -> Self {
        let mut parts = (*self.0).clone();
        let window = parts.observability.summary.window();
        parts.observability = Observability::new(
            parts.observability.audit.clone(),
            Arc::new(Metrics::new(server.tool_names())),
        )
        .with_summary_window(window);
        parts.server = server;
        Self(Arc::new(parts))
    }

    /// Puts the figures read at scrape time into the metrics.
    pub fn refresh_gauges(&self) {
        self.observability.metrics.set_gauges(
            self.sessions.len(),
            self.limiters.requests.tracked(),
            self.observability.audit.dropped(),
        );
    }
}

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
pub fn router(state: AppState, limits: Limits) -> App {
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
    let origin = PolicyLayer(RequireAllowedOrigin(state.origin.clone()));
    let key = PolicyLayer(RequireKey(state.keys.clone()));
    let key_bound = KeyBoundLayer {
        max_streams: limits.max_streams_per_key,
    };
    let mcp = keyed.route_layer(
        tower::ServiceBuilder::new()
            .layer(origin.clone())
            .layer(key.clone())
            .layer(key_bound)
            .layer(DefaultBodyLimit::max(limits.max_body)),
    );
    // `POST /mcp`, nearly every request, skips axum's routing (its boxing and cloning per
    // request) for the same two policies around its own service.
    let mcp_post = tower::ServiceBuilder::new()
        .layer(origin)
        .layer(key)
        .layer(key_bound)
        .service(McpPost {
            state: state.clone(),
            max_body: limits.max_body,
        });
    let limiters = state.limiters.clone();
    let cors = cors::layer(state.origin.clone());
    let client_ip = state.client_ip.clone();
    let observability = state.observability.clone();

    let routes = Routes {
        mcp_post,
        rest: Router::new()
            .merge(mcp)
            .route("/health", get(health))
            .fallback(not_found)
            .with_state(state),
    };
    // The outer layers wrap the routes as one service (rather than `Router::layer`, which would
    // wrap every route), and every layer has a named future: cloning the stack for a request
    // copies `Arc`s, and no layer allocates (the one box is `POST /mcp`'s handler future).
    tower::ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::PROXY_AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(PolicyLayer(ResolveClientIp(client_ip)))
        .layer(PolicyLayer(Audit(observability)))
        .layer(CatchPanicLayer)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(PolicyLayer(EnforceLimits(limiters)))
        .layer(cors)
        .service(routes)
}

/// The service [`router`] builds: every layer, outermost first, around the routes.
pub type App = SetSensitiveRequestHeaders<
    PolicyService<
        ResolveClientIp,
        PolicyService<
            Audit,
            CatchPanic<Timeout<PolicyService<EnforceLimits, BrowserCors<Routes>>>>,
        >,
    >,
>;

/// `POST /mcp` to its own service, everything else to the axum router.
#[derive(Debug, Clone)]
pub struct Routes {
    mcp_post: PolicyService<RequireAllowedOrigin, PolicyService<RequireKey, KeyBound<McpPost>>>,
    rest: Router,
}

impl tower::Service<Request> for Routes {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        PolicyFuture<
            RequireAllowedOrigin,
            PolicyFuture<
                RequireKey,
                KeyBoundFuture<BoxFuture<'static, Result<Response, Infallible>>>,
            >,
        >,
        RouteFuture<Infallible>,
    >;

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
