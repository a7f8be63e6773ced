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

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::error::RpcError;

/// The longest line a child may write (a larger result is refused and the child stopped).
pub const MAX_LINE: usize = 8 * 1024 * 1024;
/// The longest stderr line kept in our log.
pub const MAX_STDERR_LINE: usize = 1024;
/// Stderr lines logged per second and child, at most.
pub const STDERR_LINES_PER_SECOND: u32 = 20;
/// How long a child has to exit after SIGTERM.
pub const KILL_AFTER: Duration = Duration::from_secs(2);
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

type Reply = Result<Value, Value>;

/// How long the child's own request waits for the client's answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// What the child sends that belongs to a call in flight.
#[derive(Debug)]
pub enum Inbound {
    /// `notifications/progress` params, for the call whose token they carry.
    Progress(Value),
    /// `notifications/message` params.
    Log(Value),
    /// A request of the child's own (`sampling/createMessage`, `elicitation/create`,
    /// `roots/list`): the call relays it to its client, or refuses it, through `answer`.
    Ask {
        method: String,
        params: Value,
        answer: oneshot::Sender<Reply>,
    },
}

/// Requests in flight, and where each call hears what the child sends it.
#[derive(Default)]
struct Routes {
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    /// Token `gw-<id>` → the call's inbound channel.
    listeners: HashMap<String, (u64, mpsc::Sender<Inbound>)>,
}

impl Routes {
    /// The newest call in flight that listens (log messages and the child's requests carry no
    /// token: they go to this principal's newest call, never to another principal's).
    fn newest(&self) -> Option<mpsc::Sender<Inbound>> {
        self.listeners
            .values()
            .max_by_key(|(id, _)| *id)
            .map(|(_, tx)| tx.clone())
    }
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

fn lock(routes: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(|e| e.into_inner())
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

/// SIGTERM to the process group now, SIGKILL after [`KILL_AFTER`] (if a runtime is there to
/// wait; `kill_on_drop` covers the leader otherwise).
fn stop_group(pid: u32) {
    let Some(group) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            tokio::time::sleep(KILL_AFTER).await;
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        });
    }
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

async fn write_stdin(mut stdin: tokio::process::ChildStdin, mut outgoing: mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = outgoing.recv().await {
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

/// Reads the child's messages until it exits or breaks the protocol; then fails what is
/// pending and reaps the child.
async fn read_stdout(
    stdout: tokio::process::ChildStdout,
    mut child: Child,
    routes: Arc<Mutex<Routes>>,
    alive: Arc<AtomicBool>,
    to_child: mpsc::Sender<Vec<u8>>,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) if line.len() > MAX_LINE => {
                tracing::warn!(target: "upstream", pid = ?child.id(), "the upstream server wrote a line over the limit; stopping it");
                break;
            }
            Ok(_) => {}
        }
        let Ok(message) = serde_json::from_slice::<Value>(&line) else {
            if !line.iter().all(u8::is_ascii_whitespace) {
                tracing::debug!(target: "upstream", "a line from the upstream server is not JSON");
            }
            continue;
        };
        handle(message, &routes, &to_child).await;
    }
    let stopped_by_us = !alive.swap(false, Ordering::Relaxed);
    let pending: Vec<_> = lock(&routes).pending.drain().collect();
    for (_, answer) in pending {
        drop(answer);
    }
    if let Some(pid) = child.id() {
        stop_group(pid);
    }
    let status = child.wait().await.ok().and_then(|s| s.code());
    if stopped_by_us {
        tracing::info!(target: "upstream", status = ?status, "upstream server stopped");
    } else {
        tracing::warn!(target: "upstream", status = ?status, "upstream server exited");
    }
}

/// One message from the child: an answer, a notification, or a request of its own.
async fn handle(message: Value, routes: &Mutex<Routes>, to_child: &mpsc::Sender<Vec<u8>>) {
    let method = message.get("method").and_then(Value::as_str);
    match (method, message.get("id")) {
        (None, Some(id)) => {
            let Some(id) = id.as_u64() else { return };
            let answer = lock(routes).pending.remove(&id);
            if let Some(answer) = answer {
                let reply = match message.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = answer.send(reply);
            }
        }
        (Some(method), Some(id)) => {
            // A request of the child's own: its principal's newest call relays it (if its
            // client can answer), else it is refused at once; either way the child hears back.
            let (answer, answered) = oneshot::channel();
            let ask = Inbound::Ask {
                method: method.to_owned(),
                params: message.get("params").cloned().unwrap_or(Value::Null),
                answer,
            };
            let newest = lock(routes).newest();
            let relayed = newest.is_some_and(|tx| tx.try_send(ask).is_ok());
            let id = id.clone();
            let to_child = to_child.clone();
            tokio::spawn(async move {
                let refused = json!({ "jsonrpc": "2.0", "id": id,
                    "error": { "code": -32601, "message": "Method not found" } });
                let reply = match tokio::time::timeout(ASK_TIMEOUT, answered).await {
                    Ok(Ok(Ok(result))) if relayed => {
                        json!({ "jsonrpc": "2.0", "id": id, "result": result })
                    }
                    Ok(Ok(Err(error))) if relayed => {
                        json!({ "jsonrpc": "2.0", "id": id, "error": error })
                    }
                    _ => refused,
                };
                let mut line = reply.to_string().into_bytes();
                line.push(b'\n');
                let _ = to_child.send(line).await;
            });
        }
        (Some("notifications/progress"), None) => {
            let token = message["params"]["progressToken"]
                .as_str()
                .unwrap_or_default();
            let route = lock(routes).listeners.get(token).map(|(_, tx)| tx.clone());
            if let Some(route) = route {
                let _ = route.try_send(Inbound::Progress(message["params"].clone()));
            }
        }
        (Some("notifications/message"), None) => {
            let newest = lock(routes).newest();
            if let Some(route) = newest {
                let _ = route.try_send(Inbound::Log(message["params"].clone()));
            }
        }
        _ => {}
    }
}

/// Copies the child's stderr into our log, cut and rate-limited.
async fn log_stderr(stderr: tokio::process::ChildStderr, pid: Option<u32>) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut second = tokio::time::Instant::now();
    let (mut logged, mut skipped) = (0u32, 0u64);
    loop {
        line.clear();
        match (&mut reader)
            .take(64 * 1024)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let now = tokio::time::Instant::now();
        if now.duration_since(second) >= Duration::from_secs(1) {
            second = now;
            logged = 0;
        }
        if logged >= STDERR_LINES_PER_SECOND {
            skipped += 1;
            continue;
        }
        logged += 1;
        let end = line.len().min(MAX_STDERR_LINE);
        let text = String::from_utf8_lossy(&line[..end]);
        tracing::info!(target: "upstream", pid = ?pid, skipped, line = %text.trim_end(), "upstream stderr");
        skipped = 0;
    }
}
