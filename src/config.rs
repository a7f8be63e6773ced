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

use crate::keys;
use crate::security::auth::KeyId;

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
    pub max_body: usize,
    pub request_timeout: Duration,
    pub session_idle: Duration,
    pub max_sessions: usize,
}

/// A configuration that cannot run. The message names the flag, never a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--bind: '{0}' is not an address such as 127.0.0.1:8080")]
    BadBind(String),
    #[error("--api-key: a key is empty")]
    EmptyKey,
    #[error(
        "--api-key: a key has characters that cannot travel in a Bearer header (use letters, digits, - . _ ~ + /)"
    )]
    KeySyntax,
    #[error("--api-key: the same key is given twice")]
    DuplicateKey,
    #[error("--env-keys: MCP_API_KEYS is not set or holds no key")]
    EnvKeysMissing,
    #[error("--allow-dir: '{dir}' cannot be used: {reason}")]
    BadDir { dir: String, reason: String },
    #[error("--{0} must be greater than zero")]
    Zero(&'static str),
    #[error("cannot generate a key: the operating system's random number generator is unavailable")]
    Random,
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
            if keys[..i].iter().any(|(_, k)| k == key) {
                return Err(ConfigError::DuplicateKey);
            }
        }
        let generated = keys.is_empty();
        if generated {
            let key = keys::generate_key().map_err(|_| ConfigError::Random)?;
            keys.push((KeyId::new("generated"), key));
        }

        let mut allow_dirs = Vec::with_capacity(cli.allow_dirs.len());
        for dir in cli.allow_dirs {
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

        for (name, value) in [
            ("max-body", cli.max_body as u64),
            ("request-timeout-secs", cli.request_timeout_secs),
            ("session-idle-secs", cli.session_idle_secs),
            ("max-sessions", cli.max_sessions as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }

        Ok(Self {
            bind,
            allow_dirs,
            keys: KeySet { keys, generated },
            max_body: cli.max_body,
            request_timeout: Duration::from_secs(cli.request_timeout_secs),
            session_idle: Duration::from_secs(cli.session_idle_secs),
            max_sessions: cli.max_sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            cli(&["--api-key", "aaa", "--api-key", "bbb", "--env-keys"]),
            Some("ccc, ddd".into()),
        )
        .expect("config");
        let ids: Vec<_> = c.keys.keys.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids, ["cli-1", "cli-2", "env-1", "env-2"]);
        assert!(!c.keys.generated);
    }

    #[test]
    fn bad_configuration_is_refused_with_a_clear_error() {
        let cases: [(&[&str], Option<&str>, ConfigError); 6] = [
            (
                &["--bind", "nowhere"],
                None,
                ConfigError::BadBind("nowhere".into()),
            ),
            (&["--api-key", ""], None, ConfigError::EmptyKey),
            (&["--api-key", "a b"], None, ConfigError::KeySyntax),
            (
                &["--api-key", "abc", "--api-key", "abc"],
                None,
                ConfigError::DuplicateKey,
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
    fn debug_output_never_shows_keys() {
        let c = Config::from_cli(cli(&["--api-key", "super-secret-value"]), None).expect("config");
        assert!(!format!("{c:?}").contains("super-secret-value"));
    }
}
