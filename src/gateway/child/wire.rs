//! The wire to a child: what it writes on stdout (answers routed to their requests, progress
//! to the call that owns its token, log messages and the child's own requests to its
//! principal's newest call), its stderr into our log, and stopping its process group.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

/// The longest line a child may write (a larger result is refused and the child stopped).
pub const MAX_LINE: usize = 8 * 1024 * 1024;
/// The longest stderr line kept in our log.
pub const MAX_STDERR_LINE: usize = 1024;
/// Stderr lines logged per second and child, at most.
pub const STDERR_LINES_PER_SECOND: u32 = 20;
/// How long a child has to exit after SIGTERM.
pub const KILL_AFTER: Duration = Duration::from_secs(2);
pub(super) type Reply = Result<Value, Value>;

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
pub(super) struct Routes {
    pub(super) pending: HashMap<u64, oneshot::Sender<Reply>>,
    /// Token `gw-<id>` → the call's inbound channel.
    pub(super) listeners: HashMap<String, (u64, mpsc::Sender<Inbound>)>,
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

pub(super) fn lock(routes: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

/// SIGTERM to the process group now, SIGKILL after [`KILL_AFTER`] (if a runtime is there to
/// wait; `kill_on_drop` covers the leader otherwise).
pub(super) fn stop_group(pid: u32) {
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

pub(super) async fn write_stdin(
    mut stdin: tokio::process::ChildStdin,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(line) = outgoing.recv().await {
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

/// Reads the child's messages until it exits or breaks the protocol; then fails what is
/// pending and reaps the child.
pub(super) async fn read_stdout(
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
pub(super) async fn log_stderr(stderr: tokio::process::ChildStderr, pid: Option<u32>) {
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
