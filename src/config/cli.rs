//! The command line: every flag, each also an `MCP_*` environment variable. Key values never
//! appear in `--help` (the environment values of key flags are hidden).

use std::path::PathBuf;

use clap::Parser;

use crate::security::client_ip::ForwardedHeader;

/// Command-line interface.
#[derive(Debug, Parser)]
#[command(
    name = "secure-mcp-server",
    version,
    about = "A Model Context Protocol server over HTTP, built to be exposed safely."
)]
pub struct Cli {
    /// Address to listen on.
    #[arg(
        long,
        env = "MCP_BIND",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub bind: String,

    /// A directory the file tools and resources may read (repeatable). Without one, no file
    /// tools are offered.
    #[arg(
        long = "allow-dir",
        env = "MCP_ALLOW_DIRS",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    pub allow_dirs: Vec<PathBuf>,

    /// An accepted API key (repeatable).
    #[arg(
        long = "api-key",
        env = "MCP_API_KEY",
        value_delimiter = ',',
        hide_env_values = true,
        allow_hyphen_values = true,
        value_name = "KEY"
    )]
    pub api_keys: Vec<String>,

    /// An identity provider whose access tokens (JWT) are accepted beside API keys
    /// (repeatable; https, or http on loopback). Needs --public-url.
    #[arg(
        long = "oauth-issuer",
        env = "MCP_OAUTH_ISSUERS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub oauth_issuers: Vec<String>,

    /// The URL clients use for /mcp (https://host/mcp): the tokens' audience, and where the
    /// protected-resource metadata says the resource is.
    #[arg(long, env = "MCP_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// The audience tokens must name, if not --public-url.
    #[arg(long, env = "MCP_OAUTH_AUDIENCE", value_name = "URI")]
    pub oauth_audience: Option<String>,

    /// The issuer's JWKS URL, if its metadata does not give it (one issuer only).
    #[arg(long, env = "MCP_OAUTH_JWKS_URL", value_name = "URL")]
    pub oauth_jwks_url: Option<String>,

    /// Scopes every token must carry (comma-separated), advertised in the metadata and in
    /// every challenge.
    #[arg(
        long = "oauth-scopes",
        env = "MCP_OAUTH_SCOPES",
        value_delimiter = ',',
        value_name = "SCOPE"
    )]
    pub oauth_scopes: Vec<String>,

    /// The issuer's RFC 7662 introspection endpoint, for opaque (non-JWT) tokens; this server
    /// authenticates there as --oauth-client-id with the secret in MCP_OAUTH_CLIENT_SECRET.
    #[arg(long, env = "MCP_OAUTH_INTROSPECTION_URL", value_name = "URL")]
    pub oauth_introspection_url: Option<String>,

    /// This server's client id at the introspection endpoint.
    #[arg(long, env = "MCP_OAUTH_CLIENT_ID", value_name = "ID")]
    pub oauth_client_id: Option<String>,

    /// Accept access tokens only: API keys are refused (needs --oauth-issuer).
    #[arg(long, env = "MCP_NO_API_KEYS")]
    pub no_api_keys: bool,

    /// Also accept the comma-separated keys in MCP_API_KEYS.
    #[arg(long, env = "MCP_ENV_KEYS")]
    pub env_keys: bool,

    /// Print a new random API key and exit.
    #[arg(long)]
    pub generate_key: bool,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MCP_MAX_BODY", default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_body: usize,

    /// Time limit for one request, in seconds.
    #[arg(
        long,
        env = "MCP_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        value_name = "SECS"
    )]
    pub request_timeout_secs: u64,

    /// A legacy session without requests for this long expires, in seconds.
    #[arg(
        long,
        env = "MCP_SESSION_IDLE_SECS",
        default_value_t = 1800,
        value_name = "SECS"
    )]
    pub session_idle_secs: u64,

    /// Most legacy sessions alive at once.
    #[arg(
        long,
        env = "MCP_MAX_SESSIONS",
        default_value_t = 10_000,
        value_name = "N"
    )]
    pub max_sessions: usize,

    /// Most legacy sessions one key may hold at once; one more `initialize` gets 429.
    #[arg(
        long,
        env = "MCP_MAX_SESSIONS_PER_KEY",
        default_value_t = 100,
        value_name = "N"
    )]
    pub max_sessions_per_key: usize,

    /// How long a 2026-07-28 task and its result are kept, from its creation; unfinished
    /// work is stopped then.
    #[arg(
        long,
        env = "MCP_TASK_TTL_SECS",
        default_value_t = 300,
        value_name = "SECS"
    )]
    pub task_ttl_secs: u64,

    /// Most unfinished 2026-07-28 tasks per key (or token subject).
    #[arg(
        long,
        env = "MCP_MAX_TASKS_PER_KEY",
        default_value_t = 16,
        value_name = "N"
    )]
    pub max_tasks_per_key: usize,

    /// Most open event streams (GET /mcp, subscriptions/listen, streamed results) per key.
    #[arg(
        long,
        env = "MCP_MAX_STREAMS_PER_KEY",
        default_value_t = 32,
        value_name = "N"
    )]
    pub max_streams_per_key: usize,

    /// A file of accepted keys as 'id:sha256hex' lines (digests, not keys); re-read on SIGHUP.
    #[arg(long, env = "MCP_KEYS_FILE", value_name = "PATH")]
    pub keys_file: Option<PathBuf>,

    /// A secret shared by every instance behind one address, so a multi-round request's
    /// state opens on any of them (one line, mode 600, at least 128 bits).
    #[arg(long, env = "MCP_STATE_SECRET_FILE", value_name = "PATH")]
    pub state_secret_file: Option<PathBuf>,

    /// Redis shared by a fleet of instances: one budget per client across all of them, and
    /// 2025-era sessions any instance honours (redis:// or rediss://; the password may come
    /// from MCP_REDIS_PASSWORD instead). Needs --state-secret-file and --fleet-size.
    #[arg(
        long,
        env = "MCP_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,

    /// While Redis does not answer: 'local' limits each client to its budget divided by
    /// --fleet-size on each instance; 'deny' refuses with 429.
    #[arg(long, env = "MCP_REDIS_FALLBACK", value_enum, default_value_t = crate::fleet::Fallback::Local)]
    pub redis_fallback: crate::fleet::Fallback,

    /// How many instances share the Redis of --redis-url.
    #[arg(long, env = "MCP_FLEET_SIZE", value_name = "N")]
    pub fleet_size: Option<u32>,

    /// A policy file: which tools each key may use, and how much (TOML; re-read on SIGHUP).
    #[arg(long, env = "MCP_POLICY", value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// Requests per client per window.
    #[arg(long, env = "MCP_RATE_LIMIT", default_value_t = 100, value_name = "N")]
    pub rate_limit: u32,

    /// The rate-limit window, in seconds.
    #[arg(
        long,
        env = "MCP_RATE_WINDOW",
        default_value_t = 60,
        value_name = "SECS"
    )]
    pub rate_window: u64,

    /// Most clients the rate limiter tracks one by one.
    #[arg(
        long,
        env = "MCP_RATE_LIMIT_MAX_CLIENTS",
        default_value_t = 1_000_000,
        value_name = "N"
    )]
    pub rate_limit_max_clients: usize,

    /// IPv6 clients are rate-limited per prefix of this length.
    #[arg(long, env = "MCP_RATE_LIMIT_IPV6_PREFIX", default_value_t = 64, value_name = "BITS",
          value_parser = clap::value_parser!(u8).range(1..=128))]
    pub rate_limit_ipv6_prefix: u8,

    /// Failed authentications per client per window before it is refused outright.
    #[arg(
        long,
        env = "MCP_AUTH_FAIL_LIMIT",
        default_value_t = 10,
        value_name = "N"
    )]
    pub auth_fail_limit: u32,

    /// The failed-authentication window, in seconds.
    #[arg(
        long,
        env = "MCP_AUTH_FAIL_WINDOW",
        default_value_t = 60,
        value_name = "SECS"
    )]
    pub auth_fail_window: u64,

    /// A proxy whose X-Forwarded-For / Forwarded headers are believed (repeatable).
    #[arg(
        long = "trusted-proxy",
        env = "MCP_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub trusted_proxies: Vec<String>,

    /// The one forwarded header a trusted proxy writes and the server reads; the other is
    /// ignored even when present.
    #[arg(
        long,
        env = "MCP_FORWARDED_HEADER",
        value_enum,
        default_value_t = ForwardedHeader::XForwardedFor,
        value_name = "HEADER"
    )]
    pub forwarded_header: ForwardedHeader,

    /// A browser origin allowed to call the server, e.g. https://app.example.com (repeatable).
    #[allow(rustdoc::bare_urls)] // the text is --help's, where a bare origin reads best
    #[arg(
        long = "allow-origin",
        env = "MCP_ALLOW_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allow_origins: Vec<String>,

    /// A Host header value to accept, NAME or NAME:PORT (repeatable; default: loopback names).
    #[arg(
        long = "allow-host",
        env = "MCP_ALLOW_HOSTS",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub allow_hosts: Vec<String>,

    /// Accept any Host header (only behind a proxy that checks it).
    #[arg(long, env = "MCP_ALLOW_ANY_HOST")]
    pub allow_any_host: bool,

    /// Allow plain HTTP on a non-loopback address (refused without it).
    #[arg(long, env = "MCP_ALLOW_PLAINTEXT")]
    pub allow_plaintext: bool,

    /// Most open connections; further connections are closed at once.
    #[arg(
        long,
        env = "MCP_MAX_CONNECTIONS",
        default_value_t = 1024,
        value_name = "N"
    )]
    pub max_connections: usize,

    /// Most open connections from one client address (an IPv6 client: its prefix of
    /// --rate-limit-ipv6-prefix bits); trusted proxies count only against --max-connections.
    #[arg(
        long,
        env = "MCP_MAX_CONNECTIONS_PER_IP",
        default_value_t = 64,
        value_name = "N"
    )]
    pub max_connections_per_ip: usize,

    /// Time a client has to send its request headers, in seconds.
    #[arg(
        long,
        env = "MCP_HEADER_TIMEOUT_SECS",
        default_value_t = 10,
        value_name = "SECS"
    )]
    pub header_timeout_secs: u64,

    /// Log format on stderr.
    #[arg(long, env = "MCP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Write the audit trail to this file (newline-delimited JSON, appended) instead of the log.
    #[arg(long, env = "MCP_AUDIT_LOG", value_name = "PATH")]
    pub audit_log: Option<PathBuf>,

    /// Serve /metrics without a key on this separate address (otherwise /metrics needs a key).
    #[arg(long, env = "MCP_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<String>,

    /// Allow --metrics-bind on a non-loopback address (metrics are served without a key).
    #[arg(long, env = "MCP_ALLOW_PUBLIC_METRICS")]
    pub allow_public_metrics: bool,

    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "MCP_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "MCP_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// On SIGTERM or Ctrl-C, how long in-flight requests may take to finish, in seconds.
    #[arg(
        long,
        env = "MCP_SHUTDOWN_TIMEOUT",
        default_value_t = 10,
        value_name = "SECS"
    )]
    pub shutdown_timeout: u64,

    /// Gateway: an environment variable the upstream gets, if set here (repeatable; `PATH`
    /// always; nothing else of this environment reaches it).
    #[arg(long = "upstream-env", value_name = "NAME")]
    pub upstream_env: Vec<String>,

    /// Gateway: the pinned tool definitions (`gateway pin` writes them); a tool whose
    /// definition differs is withheld. Without it, tools are pinned at first sight.
    #[arg(long, env = "MCP_PIN_FILE", value_name = "PATH")]
    pub pin_file: Option<PathBuf>,

    /// Gateway: upstream processes running at once, at most (one per key or token subject).
    #[arg(
        long,
        env = "MCP_MAX_UPSTREAMS",
        default_value_t = 32,
        value_name = "N"
    )]
    pub max_upstreams: usize,

    /// Gateway: an upstream process unused this long is stopped, in seconds.
    #[arg(
        long,
        env = "MCP_UPSTREAM_IDLE_SECS",
        default_value_t = 600,
        value_name = "SECS"
    )]
    pub upstream_idle_secs: u64,

    /// Gateway: one upstream process per key (or token subject), or per 2025-era session of a
    /// key (for upstreams that keep state per client; requests without a session share the
    /// key's process).
    #[arg(
        long,
        env = "MCP_UPSTREAM_SCOPE",
        value_enum,
        default_value_t = UpstreamScope::Key,
        value_name = "SCOPE"
    )]
    pub upstream_scope: UpstreamScope,

    /// Gateway, `--upstream-scope session`: upstream processes one key's sessions may hold.
    #[arg(
        long,
        env = "MCP_MAX_UPSTREAMS_PER_KEY",
        default_value_t = 4,
        value_name = "N"
    )]
    pub max_upstreams_per_key: usize,

    /// Gateway: several upstreams from a TOML file (`[upstream.NAME]` with `command = [...]`
    /// and optionally `env = [...]`), their tools named `NAME__tool`; instead of `-- COMMAND`.
    #[arg(long, env = "MCP_UPSTREAMS_FILE", value_name = "PATH")]
    pub upstreams_file: Option<PathBuf>,

    /// Gateway: the upstream server's command and arguments, after `--` (run without a shell).
    #[arg(last = true, value_name = "COMMAND", hide = true)]
    pub upstream: Vec<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What one gateway upstream process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpstreamScope {
    Key,
    Session,
}

/// How diagnostics are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Probe a running server's defences and print PASS/FAIL per check.
    Check(crate::check::CheckArgs),
    /// Work with a per-key policy file offline.
    #[command(subcommand)]
    Policy(crate::security::key_policy::report::PolicyCommand),
}
