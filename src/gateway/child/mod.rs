//! One upstream MCP server over stdio: spawned from the operator's argv (never a shell), in a
//! process group of its own, with an empty environment plus an allow-list. It is asked for
//! `server/discover` first: a child that speaks 2026-07-28 gets `_meta` on every request; any
//! other answer, or none within [`PROBE_TIMEOUT`], and it is spoken to as a 2025-11-25 client
//! (`initialize`). Requests carry ids of our own, so a client's ids never reach it and two
//! clients' ids cannot collide.
//!
//! Bounds and failures:
//! - a line from the child longer than [`MAX_LINE`] is a protocol violation: the child is
//!   stopped and its pending requests fail;
//! - stderr goes to our log (target `upstream`), each line cut to [`MAX_STDERR_LINE`] bytes, at
//!   most [`STDERR_LINES_PER_SECOND`] lines a second, the rest counted;
//! - a request the child sends us (sampling, elicitation, roots) goes to its principal's newest
//!   call in flight, which relays it to its client if the client declared the capability and
//!   can be asked (a 2025 session's stream); otherwise it is answered `-32601` at once, so the
//!   child never waits on a client that cannot hear it ([`ASK_TIMEOUT`] at most);
//! - progress notifications go to the request that owns their token, log messages to the
//!   principal's newest call; never to another principal;
//! - when the child exits, every pending request fails with a JSON-RPC error;
//! - stopping: stdin closed, SIGTERM to the group, SIGKILL after [`KILL_AFTER`].

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

use crate::error::RpcError;

mod wire;

pub use wire::{
    ASK_TIMEOUT, Inbound, KILL_AFTER, MAX_LINE, MAX_STDERR_LINE, STDERR_LINES_PER_SECOND,
};
use wire::{Routes, lock, log_stderr, read_stdout, stop_group, write_stdin};

/// How long the child has to answer `initialize`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The protocol revision spoken to children that do not speak [`MODERN_PROTOCOL`].
pub const CHILD_PROTOCOL: &str = "2025-11-25";
/// The revision a child is asked about first (`server/discover`).
pub const MODERN_PROTOCOL: &str = "2026-07-28";
/// How long a child has to answer `server/discover` before it is taken for a 2025 server.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What starts a child: argv and the environment it gets.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub argv: Vec<String>,
    /// `NAME=value` pairs, the whole environment of the child.
    pub env: Vec<(String, String)>,
}

/// A running child and the client half of its JSON-RPC session.
pub struct Upstream {
    to_child: mpsc::Sender<Vec<u8>>,
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
    pid: Option<u32>,
    /// The child's `initialize` result (for a 2026-07-28 child, the same fields from its
    /// `server/discover` result).
    pub initialized: Value,
    /// The child speaks 2026-07-28: every request carries `_meta` instead of a session.
    modern: bool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the upstream command could not be started: {0}")]
    Spawn(std::io::Error),
    #[error("the upstream server did not complete initialize")]
    Initialize,
}

impl Upstream {
    /// Starts the child and completes `initialize`.
    pub async fn start(spawn: &Spawn) -> Result<Arc<Self>, StartError> {
        let (program, args) = spawn
            .argv
            .split_first()
            .ok_or_else(|| StartError::Spawn(std::io::ErrorKind::InvalidInput.into()))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(spawn.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(StartError::Spawn)?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(StartError::Initialize);
        };
        let routes: Arc<Mutex<Routes>> = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (to_child, outgoing) = mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(write_stdin(stdin, outgoing));
        tokio::spawn(log_stderr(stderr, pid));
        tokio::spawn(read_stdout(
            stdout,
            child,
            routes.clone(),
            alive.clone(),
            to_child.clone(),
        ));
        let mut upstream = Self {
            to_child,
            routes,
            next_id: AtomicU64::new(1),
            alive,
            pid,
            initialized: Value::Null,
            modern: false,
        };
        if let Some(discovered) = upstream.discover().await {
            upstream.initialized = discovered;
            upstream.modern = true;
            tracing::info!(target: "upstream", pid = ?pid, "upstream server started (2026-07-28)");
            return Ok(Arc::new(upstream));
        }
        let params = json!({
            "protocolVersion": CHILD_PROTOCOL,
            "capabilities": { "sampling": {}, "elicitation": {}, "roots": {} },
            "clientInfo": client_info(),
        });
        let init =
            tokio::time::timeout(START_TIMEOUT, upstream.request("initialize", params, None));
        upstream.initialized = match init.await {
            Ok(Ok(result)) => result,
            _ => {
                upstream.stop();
                return Err(StartError::Initialize);
            }
        };
        upstream
            .notify("notifications/initialized", json!({}))
            .await;
        tracing::info!(target: "upstream", pid = ?pid, "upstream server started");
        Ok(Arc::new(upstream))
    }

    /// Asks the child for `server/discover` (2026-07-28): its capabilities and instructions if
    /// it speaks that revision; `None` for an error of any kind or no answer within
    /// [`PROBE_TIMEOUT`] (a 2025 server: the caller falls back to `initialize`).
    async fn discover(&mut self) -> Option<Value> {
        self.modern = true;
        let probe = self.request("server/discover", json!({}), None);
        let answer = tokio::time::timeout(PROBE_TIMEOUT, probe).await;
        self.modern = false;
        let result = answer.ok()?.ok()?;
        let speaks = result["supportedVersions"]
            .as_array()?
            .iter()
            .any(|v| v == MODERN_PROTOCOL);
        speaks.then(|| {
            json!({
                "capabilities": result["capabilities"],
                "instructions": result["instructions"],
            })
        })
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    async fn send(&self, message: Value) -> bool {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.to_child.send(line).await.is_ok()
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }))
            .await;
    }

    /// Sends a request and waits for its answer: the result, or the child's error object as
    /// `Err(Ok(error))`; `Err(Err(_))` when the child went away. With `listener`, what the child
    /// sends for this call ([`Inbound`]) goes there, and with `wants_progress` the request
    /// carries a progress token. If the future is dropped first, the child is told the request
    /// was cancelled.
    pub async fn request(
        &self,
        method: &str,
        mut params: Value,
        listener: Option<(mpsc::Sender<Inbound>, bool)>,
    ) -> Result<Value, Result<Value, RpcError>> {
        if !self.is_alive() {
            return Err(Err(RpcError::Upstream(
                "the upstream server is not running",
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.modern
            && let Value::Object(p) = &mut params
        {
            let meta = p.entry("_meta").or_insert_with(|| json!({}));
            meta["io.modelcontextprotocol/protocolVersion"] = json!(MODERN_PROTOCOL);
            meta["io.modelcontextprotocol/clientCapabilities"] = json!({});
            meta["io.modelcontextprotocol/clientInfo"] = client_info();
        }
        let (answer, answered) = oneshot::channel();
        let token = format!("gw-{id}");
        {
            let mut routes = lock(&self.routes);
            routes.pending.insert(id, answer);
            if let Some((inbound, wants_progress)) = listener {
                routes.listeners.insert(token.clone(), (id, inbound));
                if wants_progress && let Value::Object(p) = &mut params {
                    let meta = p.entry("_meta").or_insert_with(|| json!({}));
                    meta["progressToken"] = json!(token);
                }
            }
        }
        let mut guard = InFlight {
            upstream: self,
            id,
            token,
            done: false,
        };
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if !self.send(message).await {
            return Err(Err(RpcError::Upstream(
                "the upstream server is not running",
            )));
        }
        let outcome = answered.await;
        guard.done = true;
        match outcome {
            Ok(Ok(result)) if self.modern => modern_result(result),
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(Ok(error)),
            Err(_) => Err(Err(RpcError::Upstream("the upstream server exited"))),
        }
    }

    /// Stops the child: stdin closed (the writer ends), SIGTERM to its group, SIGKILL after
    /// [`KILL_AFTER`].
    pub fn stop(&self) {
        self.alive.store(false, Ordering::Relaxed);
        if let Some(pid) = self.pid {
            stop_group(pid);
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Who the gateway is to its children.
fn client_info() -> Value {
    json!({ "name": "secure-mcp-server-gateway", "version": env!("CARGO_PKG_VERSION") })
}

/// A 2026-07-28 child's result without the fields our own answer sets (`resultType`, cache
/// hints, the child's identity); a request for input (`input_required`) is refused: the
/// gateway does not relay those.
fn modern_result(mut result: Value) -> Result<Value, Result<Value, RpcError>> {
    if result["resultType"] == "input_required" {
        return Err(Err(RpcError::Upstream(
            "the upstream server asked for input the gateway cannot relay",
        )));
    }
    if let Value::Object(map) = &mut result {
        for key in ["resultType", "ttlMs", "cacheScope"] {
            map.remove(key);
        }
        if let Some(Value::Object(meta)) = map.get_mut("_meta") {
            meta.remove("io.modelcontextprotocol/serverInfo");
            if meta.is_empty() {
                map.remove("_meta");
            }
        }
    }
    Ok(result)
}

/// A request in flight; dropped before its answer, it tells the child to cancel.
struct InFlight<'a> {
    upstream: &'a Upstream,
    id: u64,
    token: String,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut routes = lock(&self.upstream.routes);
        routes.pending.remove(&self.id);
        routes.listeners.remove(&self.token);
        drop(routes);
        if !self.done {
            let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": { "requestId": self.id, "reason": "the client cancelled the request" } });
            let mut line = cancel.to_string().into_bytes();
            line.push(b'\n');
            let _ = self.upstream.to_child.try_send(line);
        }
    }
}
