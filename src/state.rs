//! The application's shared state ([`AppState`]: the MCP server, sessions, keys, limiters,
//! policies and observability, built once from a [`Config`]) and the HTTP [`Limits`].

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::startup::{self, Opened};
use crate::config::{Config, ConfigErrors};
use crate::files;
use crate::files::resources::FileResources;
use crate::mcp::dispatch::{McpServer, McpServerBuilder};
use crate::mcp::resources::Resources;
use crate::mcp::session::SessionStore;
use crate::mcp::tasks::{TaskEvent, TaskLimits, TaskStore};
use crate::observability::Observability;
use crate::observability::audit::AuditSink;
use crate::observability::metrics::{Gauges, Metrics};
use crate::security::auth::KeyRing;
use crate::security::client_ip::ClientIpResolver;
use crate::security::key_policy::PolicyBook;
use crate::security::origin::OriginPolicy;
use crate::security::rate_limit::Limiters;
use crate::tools::registry::ToolRegistry;
use crate::tools::system;

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

/// The task store of `server`: its changes announced where the server's are, its events in
/// the audit; in a fleet, its records shared through Redis.
fn task_store(
    limits: TaskLimits,
    server: &McpServer,
    audit: &Arc<AuditSink>,
    fleet: Option<&crate::fleet::Fleet>,
) -> Arc<TaskStore> {
    let audit = audit.clone();
    let store = Arc::new(TaskStore::new(
        limits,
        server.changes().clone(),
        Some(Arc::new(move |event: &TaskEvent| audit.record_task(event))),
    ));
    if let Some(fleet) = fleet {
        crate::fleet::tasks::SharedTasks::attach(fleet, &store);
    }
    store
}

/// The parts of the application state.
#[derive(Clone, Debug)]
pub struct AppParts {
    pub server: Arc<McpServer>,
    pub sessions: Arc<SessionStore>,
    pub keys: Arc<KeyRing>,
    /// Per-key policy (`--policy`).
    pub policies: Arc<PolicyBook>,
    pub limiters: Limiters,
    /// 2026-07-28 tasks (tasks extension), kept in this process.
    pub tasks: Arc<TaskStore>,
    /// The fleet's Redis (`None`: this instance alone).
    pub fleet: Option<crate::fleet::Fleet>,
    /// Whether API keys are accepted (`--no-api-keys` turns them off).
    pub api_keys: bool,
    /// The identity providers' tokens (`--oauth-issuer`), if any.
    pub tokens: Option<Arc<crate::security::oauth::ResourceServer>>,
    /// The fleet's records of 2025-era sessions (with `fleet`).
    pub shared_sessions: Option<crate::fleet::sessions::SharedSessions>,
    pub origin: Arc<OriginPolicy>,
    pub client_ip: Arc<ClientIpResolver>,
    pub observability: Observability,
    /// Fires when the server starts shutting down: long-lived streams end cleanly.
    pub shutdown: CancellationToken,
    pub started: tokio::time::Instant,
    /// `/metrics` is served on its own listener (without a key), not on the main router.
    pub metrics_elsewhere: bool,
    /// A gateway's upstream processes (`secure-mcp-server gateway`), for the metrics.
    pub gateway: Vec<Arc<crate::gateway::Pool>>,
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
    /// Opens what `config` names ([`startup::open`]) and builds the state on it.
    pub fn from_config(config: &Config) -> Result<Self, ConfigErrors> {
        Ok(Self::new(config, startup::open(config)?))
    }

    /// Builds the state on what start-up opened: tools registered, schemas compiled.
    pub fn new(config: &Config, opened: Opened) -> Self {
        let Opened {
            sandbox,
            keys,
            policies,
            sealer,
            audit,
            fleet,
            tokens,
            tls: _,
        } = opened;
        let mut tools = ToolRegistry::new();
        let mut resources = Resources::default();
        if let Some(sandbox) = sandbox {
            files::tools::register(&mut tools, sandbox.clone());
            resources.add(FileResources::new(sandbox));
        }
        tools.register(system::SystemInfo);
        // With a policy, each key sees its own tools: their lists are private, and a reload that
        // changes them is announced (`listChanged`).
        let server = McpServerBuilder {
            tools: Arc::new(tools),
            resources,
            list_changed: policies.is_configured(),
            per_caller_tools: policies.is_configured(),
            sealer,
            ..McpServerBuilder::default()
        }
        .build();
        let tool_names = server.tool_names();
        let audit = Arc::new(audit);
        let tasks = task_store(config.bounds.tasks, &server, &audit, fleet.as_ref());
        let epoch = tokio::time::Instant::now();
        Self(Arc::new(AppParts {
            server,
            sessions: Arc::new(SessionStore::with_quota(
                config.bounds.session_idle,
                config.bounds.max_sessions,
                config.bounds.max_sessions_per_key,
            )),
            keys: Arc::new(keys),
            policies: Arc::new(policies),
            limiters: match &fleet {
                Some(fleet) => Limiters::shared(
                    fleet,
                    config.bounds.rate,
                    config.bounds.auth_failures,
                    epoch,
                ),
                None => {
                    Limiters::in_process(config.bounds.rate, config.bounds.auth_failures, epoch)
                }
            },
            shared_sessions: fleet.as_ref().map(|f| {
                crate::fleet::sessions::SharedSessions::new(f.clone(), config.bounds.session_idle)
            }),
            fleet,
            api_keys: config.api_keys,
            tokens,
            origin: Arc::new(OriginPolicy::new(
                config.allow_origins.clone(),
                config.hosts.clone(),
                config.bind.ip().is_loopback(),
            )),
            client_ip: Arc::new(ClientIpResolver::new(
                config.trusted_proxies.clone(),
                config.forwarded_header,
            )),
            tasks,
            observability: Observability::new(audit, Arc::new(Metrics::new(tool_names)))
                .with_summary_window(config.bounds.rate.window),
            shutdown: CancellationToken::new(),
            started: tokio::time::Instant::now(),
            metrics_elsewhere: config.metrics_bind.is_some(),
            gateway: Vec::new(),
        }))
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
        parts.tasks = task_store(
            parts.tasks.limits(),
            &server,
            &parts.observability.audit,
            parts.fleet.as_ref(),
        );
        parts.server = server;
        Self(Arc::new(parts))
    }

    /// A gateway: `server` fronts the upstreams whose processes `pools` run.
    pub fn with_gateway(
        self,
        server: Arc<McpServer>,
        pools: Vec<Arc<crate::gateway::Pool>>,
    ) -> Self {
        let mut parts = (*self.with_server(server).0).clone();
        parts.gateway = pools;
        Self(Arc::new(parts))
    }

    /// The figures the metrics read from the state.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            sessions: self.sessions.len(),
            tasks: self.tasks.len(),
            rate_limit_clients: self.limiters.requests.tracked(),
            audit_dropped: self.observability.audit.dropped(),
            fleet: self.fleet.as_ref().map(|f| f.figures()),
            gateway: crate::gateway::Pool::total(&self.gateway),
        }
    }

    /// Puts the figures read at scrape time into the metrics.
    pub fn refresh_gauges(&self) {
        self.observability.metrics.set_gauges(self.gauges());
    }
}
