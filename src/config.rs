//! The command line (every flag also an `MCP_*` environment variable) and the validated
//! [`Config`] the server runs on.
//!
//! Anything wrong here is a [`ConfigError`]: the binary prints its one line and exits with 64
//! (`EX_USAGE`). Key values never appear in an error, in `Debug` output or in `--help` (the
//! environment values of key flags are hidden).
//!
//! Keys come from `--api-key` (repeatable; `MCP_API_KEY`, comma-separated) and, with
//! `--env-keys`, from `MCP_API_KEYS` (comma-separated). With no key at all the server makes one
//! at start (see `main.rs`). Key ids are positional: `cli-1`, `cli-2`, …, `env-1`, …, and
//! `generated`; logs name keys only by these ids.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;

use crate::keys;
use crate::security::auth::KeyId;
use crate::security::client_ip::ForwardedHeader;
use crate::security::origin::{self, HostRule};
use crate::security::rate_limit::Policy as RatePolicy;

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

    #[command(subcommand)]
    pub command: Option<Command>,
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
}

/// Where the keys came from.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySet {
    pub keys: Vec<(KeyId, String)>,
    /// True when no key was configured and one was generated at start.
    pub generated: bool,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeySet({} keys, generated: {})",
            self.keys.len(),
            self.generated
        )
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub allow_dirs: Vec<PathBuf>,
    pub keys: KeySet,
    pub keys_file: Option<PathBuf>,
    pub max_body: usize,
    pub request_timeout: Duration,
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub session_idle: Duration,
    pub max_sessions: usize,
    pub max_sessions_per_key: usize,
    pub max_streams_per_key: usize,
    pub rate: RatePolicy,
    pub auth_failures: RatePolicy,
    pub trusted_proxies: Vec<IpNet>,
    pub forwarded_header: ForwardedHeader,
    /// Normalised origins.
    pub allow_origins: Vec<String>,
    pub hosts: HostRule,
    pub log_format: LogFormat,
    pub audit_log: Option<PathBuf>,
    pub metrics_bind: Option<SocketAddr>,
    /// Certificate and key files, both checked at start.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub shutdown_timeout: Duration,
}

/// A configuration that cannot run. The message names the flag, never a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--bind: '{0}' is not an address such as 127.0.0.1:8080")]
    BadBind(String),
    #[error("a key (from --api-key, MCP_API_KEY or MCP_API_KEYS) is empty")]
    EmptyKey,
    #[error(
        "--api-key: a key has characters that cannot travel in a Bearer header (use letters, digits, - . _ ~ + /)"
    )]
    KeySyntax,
    #[error("the same key is given twice (--api-key, MCP_API_KEY, MCP_API_KEYS)")]
    DuplicateKey,
    #[error("--env-keys: MCP_API_KEYS is not set or holds no key")]
    EnvKeysMissing,
    #[error("--allow-dir: '{dir}' cannot be used: {reason}")]
    BadDir { dir: String, reason: String },
    #[error("--{0} must be greater than zero")]
    Zero(&'static str),
    #[error("cannot generate a key: the operating system's random number generator is unavailable")]
    Random,
    #[error(
        "--api-key: a key has too little entropy (estimated under 128 bits); use --generate-key"
    )]
    WeakKey,
    #[error("--keys-file: {0}")]
    KeysFile(#[from] keys::KeysFileError),
    #[error(
        "--keys-file: the id '{0}' is also used by another key source (ids cli-N, env-N and generated are taken)"
    )]
    KeyIdClash(String),
    #[error("--trusted-proxy: '{0}' is not an address or CIDR range")]
    BadCidr(String),
    #[error("--allow-origin: '{0}' is not an origin such as https://app.example.com")]
    BadOrigin(String),
    #[error("--allow-host: '{0}' is not a host name or host:port")]
    BadHost(String),
    #[error(
        "--bind {0} is not loopback: name the accepted Host values with --allow-host, or pass --allow-any-host"
    )]
    HostsRequired(SocketAddr),
    #[error("--metrics-bind: '{0}' is not an address such as 127.0.0.1:9090")]
    BadMetricsBind(String),
    #[error(
        "--metrics-bind {0} is not loopback and /metrics has no key there: pass --allow-public-metrics to serve it anyway"
    )]
    PublicMetrics(SocketAddr),
    #[error(
        "--bind {0} is not loopback and no TLS is configured: keys would cross the network in plain text; use --tls-cert/--tls-key, a TLS proxy on loopback, or pass --allow-plaintext"
    )]
    Plaintext(SocketAddr),
    #[error("--audit-log: '{dir}' cannot be written: {reason}")]
    AuditLog { dir: String, reason: String },
    #[error("--tls-cert/--tls-key: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

impl Config {
    /// Validates the command line. `env_keys` is the value of `MCP_API_KEYS`, if set.
    pub fn from_cli(cli: Cli, env_keys: Option<String>) -> Result<Self, ConfigError> {
        let bind: SocketAddr = cli
            .bind
            .parse()
            .map_err(|_| ConfigError::BadBind(cli.bind.clone()))?;

        let mut keys: Vec<(KeyId, String)> = Vec::new();
        for (i, key) in cli.api_keys.into_iter().enumerate() {
            keys.push((KeyId::new(format!("cli-{}", i + 1)), key));
        }
        if cli.env_keys {
            let listed: Vec<String> = env_keys
                .unwrap_or_default()
                .split(',')
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect();
            if listed.is_empty() {
                return Err(ConfigError::EnvKeysMissing);
            }
            for (i, key) in listed.into_iter().enumerate() {
                keys.push((KeyId::new(format!("env-{}", i + 1)), key));
            }
        }
        for (i, (_, key)) in keys.iter().enumerate() {
            if key.is_empty() {
                return Err(ConfigError::EmptyKey);
            }
            if !keys::is_bearer_token(key) {
                return Err(ConfigError::KeySyntax);
            }
            if keys::estimated_bits(key) < keys::MIN_KEY_BITS {
                return Err(ConfigError::WeakKey);
            }
            if keys[..i].iter().any(|(_, k)| k == key) {
                return Err(ConfigError::DuplicateKey);
            }
        }
        let generated = keys.is_empty() && cli.keys_file.is_none();
        if generated {
            let key = keys::generate_key().map_err(|_| ConfigError::Random)?;
            keys.push((KeyId::new("generated"), key));
        }
        if let Some(path) = &cli.keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| keys::KeysFileError::Unreadable(e.kind().to_string()))?;
            // Ids are unique across every source: a session or sealed state bound to an id
            // must never be reachable with another source's key of the same name.
            for (id, _) in keys::parse_keys_file(&text)? {
                if keys.iter().any(|(k, _)| k.as_str() == id) {
                    return Err(ConfigError::KeyIdClash(id));
                }
            }
        }

        let mut allow_dirs = Vec::with_capacity(cli.allow_dirs.len());
        for dir in cli
            .allow_dirs
            .into_iter()
            .filter(|d| !d.as_os_str().is_empty())
        {
            let bad = |reason: String| ConfigError::BadDir {
                dir: dir.display().to_string(),
                reason,
            };
            let canonical = dir.canonicalize().map_err(|e| bad(e.kind().to_string()))?;
            if !canonical.is_dir() {
                return Err(bad("not a directory".into()));
            }
            std::fs::read_dir(&canonical).map_err(|e| bad(e.kind().to_string()))?;
            allow_dirs.push(canonical);
        }

        // An empty entry (an empty environment variable) means "none".
        let trusted_proxies = cli
            .trusted_proxies
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| ConfigError::BadCidr(p.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let allow_origins = cli
            .allow_origins
            .iter()
            .filter(|o| !o.trim().is_empty())
            .map(|o| {
                origin::normalise_origin(o).ok_or_else(|| ConfigError::BadOrigin(o.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let hosts = if cli.allow_any_host {
            HostRule::Any
        } else if cli.allow_hosts.iter().any(|h| !h.trim().is_empty()) {
            let mut list = Vec::new();
            for h in cli.allow_hosts.iter().filter(|h| !h.trim().is_empty()) {
                let h = h.trim().to_ascii_lowercase();
                if h.is_empty() || h.contains(['/', '@', ' ', '?', '#']) {
                    return Err(ConfigError::BadHost(h));
                }
                list.push(h);
            }
            HostRule::List(list)
        } else if bind.ip().is_loopback() {
            HostRule::List(origin::LOOPBACK_HOSTS.map(String::from).to_vec())
        } else {
            return Err(ConfigError::HostsRequired(bind));
        };

        let metrics_bind = match &cli.metrics_bind {
            None => None,
            Some(m) if m.trim().is_empty() => None,
            Some(m) => Some(
                m.parse::<SocketAddr>()
                    .map_err(|_| ConfigError::BadMetricsBind(m.clone()))?,
            ),
        };
        if let Some(m) = metrics_bind
            && !m.ip().is_loopback()
            && !cli.allow_public_metrics
        {
            return Err(ConfigError::PublicMetrics(m));
        }
        if let Some(path) = &cli.audit_log {
            // Opened (and created 0600) here so a bad path fails at start, not on first use.
            crate::observability::audit::AuditSink::to_file(path).map_err(|e| {
                ConfigError::AuditLog {
                    dir: path.display().to_string(),
                    reason: e.kind().to_string(),
                }
            })?;
        }
        let tls = match (&cli.tls_cert, &cli.tls_key) {
            (Some(c), Some(k)) => {
                crate::tls::TlsState::load(c, k)?;
                Some((c.clone(), k.clone()))
            }
            _ => None,
        };
        if !bind.ip().is_loopback() && tls.is_none() && !cli.allow_plaintext {
            return Err(ConfigError::Plaintext(bind));
        }

        for (name, value) in [
            ("shutdown-timeout", cli.shutdown_timeout),
            ("rate-limit", u64::from(cli.rate_limit)),
            ("rate-window", cli.rate_window),
            ("rate-limit-max-clients", cli.rate_limit_max_clients as u64),
            ("auth-fail-limit", u64::from(cli.auth_fail_limit)),
            ("auth-fail-window", cli.auth_fail_window),
            ("max-connections", cli.max_connections as u64),
            ("header-timeout-secs", cli.header_timeout_secs),
            ("max-body", cli.max_body as u64),
            ("request-timeout-secs", cli.request_timeout_secs),
            ("session-idle-secs", cli.session_idle_secs),
            ("max-sessions", cli.max_sessions as u64),
            ("max-sessions-per-key", cli.max_sessions_per_key as u64),
            ("max-streams-per-key", cli.max_streams_per_key as u64),
            ("max-connections-per-ip", cli.max_connections_per_ip as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }

        Ok(Self {
            bind,
            allow_dirs,
            keys: KeySet { keys, generated },
            keys_file: cli.keys_file,
            max_body: cli.max_body,
            request_timeout: Duration::from_secs(cli.request_timeout_secs),
            header_timeout: Duration::from_secs(cli.header_timeout_secs),
            max_connections: cli.max_connections,
            max_connections_per_ip: cli.max_connections_per_ip,
            session_idle: Duration::from_secs(cli.session_idle_secs),
            max_sessions: cli.max_sessions,
            max_sessions_per_key: cli.max_sessions_per_key,
            max_streams_per_key: cli.max_streams_per_key,
            rate: RatePolicy {
                limit: cli.rate_limit,
                window: Duration::from_secs(cli.rate_window),
                max_clients: cli.rate_limit_max_clients,
                ipv6_prefix: cli.rate_limit_ipv6_prefix,
            },
            auth_failures: RatePolicy {
                limit: cli.auth_fail_limit,
                window: Duration::from_secs(cli.auth_fail_window),
                max_clients: cli.rate_limit_max_clients,
                ipv6_prefix: cli.rate_limit_ipv6_prefix,
            },
            trusted_proxies,
            forwarded_header: cli.forwarded_header,
            allow_origins,
            hosts,
            log_format: cli.log_format,
            audit_log: cli.audit_log,
            metrics_bind,
            tls,
            shutdown_timeout: Duration::from_secs(cli.shutdown_timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGk";
    const K2: &str = "k2-Hs5dG1aK9eU7oI3rT6yP2xW8mNb4vCz0qLj";
    const K3: &str = "k3-Nq4vC8bM2lF6jD0sA9gE5hZ1tYr7wXu3oPk";
    const K4: &str = "k4-Ty7uR3iO1pW5qE9aS2dF6gH0zLx8cVn4bMj";

    fn cli(args: &[&str]) -> Cli {
        let mut argv = vec!["secure-mcp-server"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("cli")
    }

    #[test]
    fn defaults_are_safe() {
        let c = Config::from_cli(cli(&[]), None).expect("config");
        assert!(c.bind.ip().is_loopback());
        assert!(c.allow_dirs.is_empty());
        assert!(c.keys.generated);
        assert_eq!(c.keys.keys.len(), 1);
        assert_eq!(c.max_body, 1024 * 1024);
    }

    #[test]
    fn keys_from_flags_and_env_get_positional_ids() {
        let c = Config::from_cli(
            cli(&["--api-key", K1, "--api-key", K2, "--env-keys"]),
            Some(format!("{K3}, {K4}")),
        )
        .expect("config");
        let ids: Vec<_> = c.keys.keys.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids, ["cli-1", "cli-2", "env-1", "env-2"]);
        assert!(!c.keys.generated);
    }

    #[test]
    fn bad_configuration_is_refused_with_a_clear_error() {
        let cases: [(&[&str], Option<&str>, ConfigError); 10] = [
            (
                &["--bind", "nowhere"],
                None,
                ConfigError::BadBind("nowhere".into()),
            ),
            (&["--api-key", ""], None, ConfigError::EmptyKey),
            (&["--api-key", "a b"], None, ConfigError::KeySyntax),
            (
                &["--api-key", K1, "--api-key", K1],
                None,
                ConfigError::DuplicateKey,
            ),
            (&["--api-key", "hunter2hunter2"], None, ConfigError::WeakKey),
            (
                &["--bind", "0.0.0.0:8080"],
                None,
                ConfigError::HostsRequired("0.0.0.0:8080".parse().expect("addr")),
            ),
            (
                &["--trusted-proxy", "10.0.0.0/33"],
                None,
                ConfigError::BadCidr("10.0.0.0/33".into()),
            ),
            (
                &["--allow-origin", "*"],
                None,
                ConfigError::BadOrigin("*".into()),
            ),
            (&["--env-keys"], None, ConfigError::EnvKeysMissing),
            (&["--env-keys"], Some(" , "), ConfigError::EnvKeysMissing),
        ];
        for (args, env, expected) in cases {
            assert_eq!(
                Config::from_cli(cli(args), env.map(str::to_owned)).err(),
                Some(expected),
                "{args:?}"
            );
        }
        let missing = Config::from_cli(cli(&["--allow-dir", "/definitely/not/here"]), None);
        assert!(matches!(missing, Err(ConfigError::BadDir { .. })));
        let zero = Config::from_cli(cli(&["--max-body", "0"]), None);
        assert_eq!(zero.err(), Some(ConfigError::Zero("max-body")));
    }

    #[test]
    fn plain_http_off_loopback_is_refused_unless_allowed() {
        let refused = |args: &[&str]| {
            matches!(
                Config::from_cli(cli(args), None),
                Err(ConfigError::Plaintext(_))
            )
        };
        assert!(!refused(&[]));
        assert!(refused(&["--bind", "0.0.0.0:8080", "--allow-any-host"]));
        assert!(refused(&[
            "--bind",
            "[::]:8080",
            "--allow-host",
            "mcp.example.com"
        ]));
        assert!(
            Config::from_cli(
                cli(&[
                    "--bind",
                    "0.0.0.0:8080",
                    "--allow-any-host",
                    "--allow-plaintext"
                ]),
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn metrics_off_loopback_need_an_acknowledgement() {
        let public = Config::from_cli(cli(&["--metrics-bind", "0.0.0.0:9090"]), None);
        assert!(matches!(public, Err(ConfigError::PublicMetrics(_))));
        let acknowledged = Config::from_cli(
            cli(&["--metrics-bind", "0.0.0.0:9090", "--allow-public-metrics"]),
            None,
        );
        assert!(acknowledged.is_ok());
        assert!(Config::from_cli(cli(&["--metrics-bind", "127.0.0.1:9090"]), None).is_ok());
    }

    #[test]
    fn a_keys_file_id_used_by_another_source_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("keys");
        std::fs::write(&file, keys::keys_file_line("cli-1", "other")).expect("write");
        let path = file.to_string_lossy().into_owned();
        assert_eq!(
            Config::from_cli(cli(&["--api-key", K1, "--keys-file", &path]), None).err(),
            Some(ConfigError::KeyIdClash("cli-1".into()))
        );
        std::fs::write(&file, "# every file key revoked\n").expect("write");
        let c = Config::from_cli(cli(&["--api-key", K1, "--keys-file", &path]), None);
        assert!(c.is_ok(), "an empty keys file is no keys, not an error");
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let c = Config::from_cli(cli(&["--api-key", K1]), None).expect("config");
        assert!(!format!("{c:?}").contains(K1));
    }
}
