//! The validated [`Config`] the server runs on, from the command line ([`cli`]).
//!
//! Validation is pure: one function per area ([`credentials`], [`network`], [`limits`]) looks
//! at its flags and reports every problem it finds, and [`Config::from_cli`] reports all of
//! them at once, each a [`ConfigError`] naming its flag. Nothing here touches the file system;
//! what the configuration names (the allowed directories, the keys file, the audit file, the
//! TLS certificate) is opened once, at start-up, by [`startup::open`], whose errors are
//! configuration errors too. The binary prints one line per error and exits with 64
//! (`EX_USAGE`). Key values never appear in an error or in `Debug` output.
//!
//! Keys come from `--api-key` (repeatable; `MCP_API_KEY`, comma-separated) and, with
//! `--env-keys`, from `MCP_API_KEYS` (comma-separated). With no key at all the server makes one
//! at start (see `main.rs`). Key ids are positional: `cli-1`, `cli-2`, …, `env-1`, …, and
//! `generated`; logs name keys only by these ids.

pub mod cli;
pub mod credentials;
pub mod fleet;
pub mod limits;
pub mod network;
pub mod oauth;
pub mod startup;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use crate::keys;
use crate::security::client_ip::ForwardedHeader;
use crate::security::origin::HostRule;

pub use cli::{Cli, Command, LogFormat};
pub use credentials::KeySet;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// As given (empty entries dropped); [`startup::open`] resolves and opens them.
    pub allow_dirs: Vec<PathBuf>,
    pub keys: KeySet,
    pub keys_file: Option<PathBuf>,
    /// Identity providers whose access tokens are accepted (`None`: API keys only).
    pub oauth: Option<oauth::OAuthOptions>,
    /// Whether API keys are accepted (`--no-api-keys` turns them off).
    pub api_keys: bool,
    /// Redis shared with the other instances of a fleet (`None`: this instance alone).
    pub fleet: Option<crate::fleet::FleetOptions>,
    /// The per-key policy file; [`startup::open`] reads it.
    pub policy: Option<PathBuf>,
    /// The shared `requestState` secret; [`startup::open`] reads it.
    pub state_secret_file: Option<PathBuf>,
    /// Body size, timeouts, connections, sessions, streams, rate limits.
    pub bounds: limits::Bounds,
    pub trusted_proxies: Vec<IpNet>,
    pub forwarded_header: ForwardedHeader,
    /// Normalised origins.
    pub allow_origins: Vec<String>,
    pub hosts: HostRule,
    pub log_format: LogFormat,
    pub audit_log: Option<PathBuf>,
    pub metrics_bind: Option<SocketAddr>,
    /// Certificate and key files; [`startup::open`] loads them.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A configuration that cannot run. The message names the flag, never a key.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
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
    KeysFile(keys::KeysFileError),
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
    #[error("--state-secret-file: {0}")]
    StateSecret(crate::mcp::request_state::SecretFileError),
    #[error("--redis-url: not a redis:// or rediss:// URL")]
    RedisUrl,
    #[error("--redis-url needs {0}: every instance of a fleet must be given the same")]
    FleetNeeds(&'static str),
    #[error("--fleet-size: from 1 to 1000 instances")]
    FleetSize,
    #[error("--redis-url: {0}")]
    Fleet(crate::fleet::FleetError),
    #[error("{0}: not an https URL (http only on loopback), or it carries credentials")]
    OAuthUrl(&'static str),
    #[error("{0}")]
    OAuth(&'static str),
    #[error("--policy: {0}")]
    Policy(crate::security::key_policy::PolicyError),
    #[error("--tls-cert/--tls-key: {0}")]
    Tls(crate::tls::TlsError),
}

/// Every problem a configuration has, in flag order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

/// One error per line.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Gathers the errors of the areas as they are checked.
#[derive(Default)]
struct Gather(Vec<ConfigError>);

impl Gather {
    fn take<T>(&mut self, checked: Result<T, Vec<ConfigError>>) -> Option<T> {
        match checked {
            Ok(value) => Some(value),
            Err(errors) => {
                for e in errors {
                    if !self.0.contains(&e) {
                        self.0.push(e);
                    }
                }
                None
            }
        }
    }
}

impl Config {
    /// Validates the command line. `env_keys` is the value of `MCP_API_KEYS`, if set. Every
    /// problem is reported, not only the first.
    pub fn from_cli(cli: Cli, env_keys: Option<String>) -> Result<Self, ConfigErrors> {
        Self::from_cli_with(cli, |name| match name {
            "MCP_API_KEYS" => env_keys.clone(),
            _ => None,
        })
    }

    /// [`Config::from_cli`], with the secrets only the environment gives read through `env`:
    /// `MCP_API_KEYS`, `MCP_REDIS_PASSWORD` and `MCP_OAUTH_CLIENT_SECRET`.
    pub fn from_cli_with(
        cli: Cli,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        let env_keys = env("MCP_API_KEYS");
        let redis_password = env("MCP_REDIS_PASSWORD");
        let mut gather = Gather::default();
        let bind = gather.take(network::bind(&cli.bind).map_err(|e| vec![e]));
        let keys = gather.take(credentials::key_set(
            &cli.api_keys,
            cli.env_keys.then_some(env_keys.unwrap_or_default()),
            // (no key is generated when keys are off, or come from a file)
            cli.keys_file.is_some() || cli.no_api_keys,
        ));
        let trusted_proxies = gather.take(network::trusted_proxies(&cli.trusted_proxies));
        let allow_origins = gather.take(network::origins(&cli.allow_origins));
        // Which hosts a non-loopback bind accepts cannot be judged without the bind.
        let hosts = bind.and_then(|bind| {
            gather.take(network::hosts(&cli.allow_hosts, cli.allow_any_host, bind))
        });
        let metrics_bind = gather.take(network::metrics_bind(
            cli.metrics_bind.as_deref(),
            cli.allow_public_metrics,
        ));
        let tls = match (&cli.tls_cert, &cli.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => None,
        };
        if let Some(bind) = bind {
            gather.take(network::transport_security(
                bind,
                tls.is_some(),
                cli.allow_plaintext,
            ));
        }
        let limits = gather.take(limits::Bounds::from_cli(&cli));
        let fleet = gather.take(fleet::options(&cli, redis_password));
        let oauth = gather.take(oauth::options(&cli, env("MCP_OAUTH_CLIENT_SECRET")));
        let (Some(bind), Some(keys), Some(trusted_proxies), Some(allow_origins), Some(hosts)) =
            (bind, keys, trusted_proxies, allow_origins, hosts)
        else {
            return Err(ConfigErrors(gather.0));
        };
        let (Some(metrics_bind), Some(limits), Some(fleet), Some(oauth)) =
            (metrics_bind, limits, fleet, oauth)
        else {
            return Err(ConfigErrors(gather.0));
        };
        if !gather.0.is_empty() {
            return Err(ConfigErrors(gather.0));
        }
        Ok(Self {
            bind,
            allow_dirs: cli
                .allow_dirs
                .into_iter()
                .filter(|d| !d.as_os_str().is_empty())
                .collect(),
            keys,
            keys_file: cli.keys_file,
            policy: cli.policy,
            fleet,
            oauth,
            api_keys: !cli.no_api_keys,
            state_secret_file: cli.state_secret_file,
            bounds: limits,
            trusted_proxies,
            forwarded_header: cli.forwarded_header,
            allow_origins,
            hosts,
            log_format: cli.log_format,
            audit_log: cli.audit_log,
            metrics_bind,
            tls,
        })
    }
}

/// The command line `secure-mcp-server ARGS…` (the configuration tests).
#[cfg(test)]
pub(crate) fn test_cli(args: &[&str]) -> Cli {
    use clap::Parser;
    let mut argv = vec!["secure-mcp-server"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("cli")
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGk";
    const K2: &str = "k2-Hs5dG1aK9eU7oI3rT6yP2xW8mNb4vCz0qLj";
    const K3: &str = "k3-Nq4vC8bM2lF6jD0sA9gE5hZ1tYr7wXu3oPk";
    const K4: &str = "k4-Ty7uR3iO1pW5qE9aS2dF6gH0zLx8cVn4bMj";

    use super::test_cli as cli;

    #[test]
    fn defaults_are_safe() {
        let c = Config::from_cli(cli(&[]), None).expect("config");
        assert!(c.bind.ip().is_loopback());
        assert!(c.allow_dirs.is_empty());
        assert!(c.keys.generated);
        assert_eq!(c.keys.keys.len(), 1);
        assert_eq!(c.bounds.max_body, 1024 * 1024);
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
                &["--bind", "0.0.0.0:8080", "--allow-plaintext"],
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
                Some(ConfigErrors(vec![expected])),
                "{args:?}"
            );
        }
        let config = Config::from_cli(cli(&["--allow-dir", "/definitely/not/here"]), None)
            .expect("the flags are well formed");
        let missing = startup::open(&config).expect_err("the directory is missing");
        assert!(matches!(missing.0[..], [ConfigError::BadDir { .. }]));
        let zero = Config::from_cli(cli(&["--max-body", "0"]), None);
        assert_eq!(
            zero.err(),
            Some(ConfigErrors(vec![ConfigError::Zero("max-body")]))
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = Config::from_cli(
            cli(&[
                "--bind",
                "nowhere",
                "--api-key",
                "hunter2hunter2",
                "--trusted-proxy",
                "10.0.0.0/33",
                "--trusted-proxy",
                "nope",
                "--allow-origin",
                "*",
                "--max-body",
                "0",
                "--rate-limit",
                "0",
            ]),
            None,
        )
        .expect_err("bad");
        assert_eq!(
            errors.0,
            [
                ConfigError::BadBind("nowhere".into()),
                ConfigError::WeakKey,
                ConfigError::BadCidr("10.0.0.0/33".into()),
                ConfigError::BadCidr("nope".into()),
                ConfigError::BadOrigin("*".into()),
                ConfigError::Zero("rate-limit"),
                ConfigError::Zero("max-body"),
            ]
        );
        assert_eq!(errors.to_string().lines().count(), 7, "one line each");
    }

    #[test]
    fn plain_http_off_loopback_is_refused_unless_allowed() {
        let refused = |args: &[&str]| {
            Config::from_cli(cli(args), None)
                .is_err_and(|e| matches!(e.0[..], [ConfigError::Plaintext(_)]))
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
        assert!(public.is_err_and(|e| matches!(e.0[..], [ConfigError::PublicMetrics(_)])));
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
        let config = Config::from_cli(cli(&["--api-key", K1, "--keys-file", &path]), None)
            .expect("the flags are well formed");
        assert_eq!(
            startup::open(&config).err(),
            Some(ConfigErrors(vec![ConfigError::KeyIdClash("cli-1".into())]))
        );
        std::fs::write(&file, "# every file key revoked\n").expect("write");
        assert!(
            startup::open(&config).is_ok(),
            "an empty keys file is no keys, not an error"
        );
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let c = Config::from_cli(cli(&["--api-key", K1]), None).expect("config");
        assert!(!format!("{c:?}").contains(K1));
    }
}
