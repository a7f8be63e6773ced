//! The gateway: every defence of the server in front of a stdio MCP server.
//! `secure-mcp-server gateway [FLAGS] -- COMMAND [ARGS...]` starts the upstream's command (argv,
//! never a shell) once at start to see what it offers, then one process per principal on
//! demand ([`pool`]), and serves the upstream's tools ([`tools`]), resources, prompts and
//! completion ([`passthrough`]) on `/mcp` in both eras behind keys or
//! tokens, per-key policy (tool allow-lists apply to upstream tools), rate limits, Origin/Host
//! checks, size and time limits, audit and metrics.
//!
//! Decisions:
//! - Isolation: one upstream process per principal, never shared across keys; the child gets
//!   an empty environment plus `PATH` and the names the operator allows (`--upstream-env`),
//!   never the inbound credential; it runs in a process group of its own, stopped with SIGTERM
//!   then SIGKILL on idle timeout and at shutdown ([`child`]).
//! - The upstream is asked for `server/discover` first and spoken to in 2026-07-28 if it
//!   answers, as a 2025-11-25 client otherwise; our clients may use either era with either.
//! - Tool definitions are pinned ([`pins`]): at first sight, or from `--pin-file` (written by
//!   `secure-mcp-server gateway pin -- COMMAND`).

pub mod child;
pub mod passthrough;
pub mod pins;
pub mod pool;
pub mod tools;

use std::path::PathBuf;
use std::sync::Arc;

use crate::mcp::dispatch::{McpServer, McpServerBuilder};

pub use child::Spawn;
pub use pool::{Pool, PoolLimits};

/// What a gateway fronts and how.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// The upstreams by name (one: its tools keep their names; several: `NAME__tool`).
    pub upstreams: Vec<(String, Spawn)>,
    pub limits: PoolLimits,
    pub pin_file: Option<PathBuf>,
}

/// Why a gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Pins(#[from] pins::PinFileError),
    #[error("the upstream server could not be started or did not list its tools")]
    Upstream,
    #[error("the upstreams file: {0}")]
    Upstreams(String),
}

/// The environment a child gets: `PATH` and the allowed names that are set here.
pub fn child_env(
    allowed: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut names: Vec<&str> = vec!["PATH"];
    names.extend(allowed.iter().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), lookup(name)?)))
        .collect()
}

/// Starts each upstream once to see what it offers.
async fn look(options: &GatewayOptions) -> Result<Vec<tools::Seen>, GatewayError> {
    let several = options.upstreams.len() > 1;
    let mut seen = Vec::new();
    for (name, spawn) in &options.upstreams {
        let pool = Arc::new(Pool::new(spawn.clone(), options.limits));
        let probe = pool.probe().await.map_err(|_| GatewayError::Upstream)?;
        probe.upstream.stop();
        seen.push(tools::Seen {
            prefix: several.then(|| name.clone()),
            pool,
            probe,
        });
    }
    Ok(seen)
}

/// Starts each upstream once to see its tools and builds the MCP server that fronts them;
/// each upstream's pool then starts one process per principal. Resources, prompts and
/// completion are passed through from a single upstream only.
pub async fn build(
    options: &GatewayOptions,
) -> Result<(Arc<McpServer>, Vec<Arc<Pool>>), GatewayError> {
    let pins = match &options.pin_file {
        Some(path) => Some(pins::read(path)?),
        None => None,
    };
    let seen = look(options).await?;
    let tools = tools::GatewayTools::new(&seen, pins);
    let (passthrough, instructions) = match seen.as_slice() {
        [one] => (
            passthrough::UpstreamPassthrough::new(
                one.pool.clone(),
                &one.probe.upstream.initialized,
            )
            .map(|p| Arc::new(p) as Arc<dyn crate::mcp::dispatch::Passthrough>),
            one.probe.upstream.initialized["instructions"]
                .as_str()
                .map(str::to_owned),
        ),
        _ => (None, None),
    };
    let server = McpServerBuilder {
        tools: Arc::new(tools),
        passthrough,
        instructions,
        ..McpServerBuilder::default()
    }
    .build();
    Ok((server, seen.into_iter().map(|s| s.pool).collect()))
}

/// `gateway pin`: starts each upstream once and writes the digests of its tools to `path`.
pub async fn pin(
    options: &GatewayOptions,
    path: &std::path::Path,
) -> Result<pins::Pins, GatewayError> {
    let pins: pins::Pins = look(options)
        .await?
        .iter()
        .flat_map(tools::Seen::pins)
        .collect();
    pins::write(path, &pins)?;
    Ok(pins)
}

/// `--upstreams-file`: `[upstream.NAME]` tables, each with `command = [argv...]` and optionally
/// `env = [NAME...]` (variables it gets besides `PATH` and `--upstream-env`). Names are
/// letters, digits, `-` and single `_`s (they prefix the tools as `NAME__tool`).
pub fn upstreams_from(
    text: &str,
    allowed: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Spawn)>, GatewayError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        command: Vec<String>,
        #[serde(default)]
        env: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        upstream: std::collections::BTreeMap<String, Entry>,
    }
    let file: File =
        toml::from_str(text).map_err(|e| GatewayError::Upstreams(e.message().to_owned()))?;
    if file.upstream.is_empty() {
        return Err(GatewayError::Upstreams("no [upstream.NAME] table".into()));
    }
    file.upstream
        .into_iter()
        .map(|(name, entry)| {
            let sound = !name.is_empty()
                && !name.contains("__")
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !sound || entry.command.is_empty() {
                return Err(GatewayError::Upstreams(format!(
                    "upstream {name:?} needs a name of letters, digits, '-' and '_' and a command"
                )));
            }
            let mut names = allowed.to_vec();
            names.extend(entry.env);
            let env = child_env(&names, &lookup);
            Ok((
                name,
                Spawn {
                    argv: entry.command,
                    env,
                },
            ))
        })
        .collect()
}
