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
    pub spawn: Spawn,
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

/// Starts the upstream once to see its tools and builds the MCP server that fronts it; the
/// pool then starts one process per principal.
pub async fn build(options: &GatewayOptions) -> Result<(Arc<McpServer>, Arc<Pool>), GatewayError> {
    let pins = match &options.pin_file {
        Some(path) => Some(pins::read(path)?),
        None => None,
    };
    let pool = Arc::new(Pool::new(options.spawn.clone(), options.limits));
    let probe = pool.probe().await.map_err(|_| GatewayError::Upstream)?;
    probe.upstream.stop();
    let tools = tools::GatewayTools::new(pool.clone(), &probe, pins);
    let passthrough =
        passthrough::UpstreamPassthrough::new(pool.clone(), &probe.upstream.initialized)
            .map(|p| Arc::new(p) as Arc<dyn crate::mcp::dispatch::Passthrough>);
    let server = McpServerBuilder {
        tools: Arc::new(tools),
        passthrough,
        instructions: probe.upstream.initialized["instructions"]
            .as_str()
            .map(str::to_owned),
        ..McpServerBuilder::default()
    }
    .build();
    Ok((server, pool))
}

/// `gateway pin`: starts the upstream once and writes the digests of its tools to `path`.
pub async fn pin(spawn: &Spawn, path: &std::path::Path) -> Result<pins::Pins, GatewayError> {
    let pool = Pool::new(spawn.clone(), PoolLimits::default());
    let probe = pool.probe().await.map_err(|_| GatewayError::Upstream)?;
    probe.upstream.stop();
    Ok(pins::write(path, &probe.listed)?)
}
