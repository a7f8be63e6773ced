//! One audit event per request, security events, and the audit file.
//!
//! Every request produces one [`AuditEvent`]: time, request id, client address, key id (never
//! the key), HTTP method and path, MCP method, tool or resource name, protocol era, status,
//! JSON-RPC error code, latency, bytes in and out, outcome (`ok`, `unauthorized`,
//! `forbidden_origin`, `rate_limited`, `invalid`, `error`) and, for file tools, the path in the
//! sandbox's namespace. The request id is also returned as `X-Request-Id`.
//!
//! Where it goes: with `--audit-log PATH`, to that file only, as newline-delimited JSON, opened
//! append-only (mode 0600); otherwise to the diagnostic log as a `tracing` event with target
//! `audit` (human lines, or JSON with `--log-format json`). Writing never blocks a request: events
//! go through a bounded channel ([`AUDIT_QUEUE`]) to a writer task, and when the channel is full
//! the event is counted as dropped (`mcp_audit_dropped_events`, `/health/details`), never lost
//! silently. On shutdown the writer drains the channel and flushes. The writer is a thread of
//! its own (not a task on the blocking pool the file tools share, so a burst of file reads
//! cannot hold the audit back), and it reopens the file by its path after SIGHUP, so
//! logrotate's rename-then-signal works.
//!
//! A client over its request budget is not audited request by request: see
//! [`crate::observability::summary`].
//!
//! Security events (target `security`, counted in `mcp_security_events_total`): `auth_failed`,
//! `rate_limited`, `forbidden_origin`, `oversized_body`, `sandbox_escape`, each with the client
//! address; and, outside a request, `connection_limit` and `connection_limit_per_ip` (a
//! connection refused at accept) and `keys_reload_failed`. Log lines are throttled per kind.
//!
//! Client-supplied strings are cut to [`MAX_FIELD`] characters. JSON encoding escapes newlines
//! and control characters, and the text log uses `Debug` formatting, which escapes them too, so
//! a client cannot forge a log line.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::AtomicBool;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{ErrorCode, OverLimit, Rejection};
use crate::mcp::jsonrpc::Message;
use crate::mcp::version::Era;
use crate::observability::metrics::{KNOWN_METHODS, Metrics, method_label};
use crate::observability::summary::RejectionSummary;
use crate::policy::RequestPolicy;
use crate::security::auth::Authenticated;
use crate::security::client_ip::client_ip;

/// The longest client-supplied string kept in an audit event.
pub const MAX_FIELD: usize = 256;
/// Audit events waiting for the writer, at most (about 8 MiB of lines when full).
pub const AUDIT_QUEUE: usize = 32_768;
/// How often the writer empties the queue into the file: the longest an event waits.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// Security events of one kind logged per second, at most; the rest are counted (metrics)
/// and summarised in the next line logged, so a flood cannot flood the log.
pub const SECURITY_LOG_PER_SECOND: u32 = 20;

/// The response header that names the request's audit event.
static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What an MCP message asked for, attached to the response for the audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCall {
    /// A method this server knows is kept without a copy.
    pub method: Cow<'static, str>,
    /// The tool or prompt name, or the resource URI.
    pub name: Option<String>,
    pub era: Option<Era>,
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_FIELD).collect()
}

impl McpCall {
    pub fn of(message: &Message) -> Option<Self> {
        let (method, params) = match message {
            Message::Request(r) => (&r.method, &r.params),
            Message::Notification(n) => (&n.method, &n.params),
            Message::Response { .. } => {
                return Some(Self {
                    method: Cow::Borrowed("response"),
                    name: None,
                    era: None,
                });
            }
        };
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .map(cut);
        Some(Self {
            method: match KNOWN_METHODS.iter().find(|known| **known == method) {
                Some(known) => Cow::Borrowed(*known),
                None => Cow::Owned(cut(method)),
            },
            name,
            era: None,
        })
    }
}

/// What a tool noted for the audit: the path it touched, whether that was an escape attempt,
/// and whether its result was an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallNote {
    pub path: Option<String>,
    pub escape: bool,
    pub tool_error: Option<bool>,
}

/// Shared between the transport (which attaches it to the response) and the tool.
pub type NoteCell = Arc<Mutex<CallNote>>;

/// Notes the sandbox path a call touched (or tried to), cut to size, for the audit log.
pub fn note_path(note: &NoteCell, path: &str, escape_attempt: bool) {
    let mut note = note.lock().unwrap_or_else(|e| e.into_inner());
    note.path = Some(path.chars().take(MAX_FIELD).collect());
    note.escape |= escape_attempt;
}

/// One audit event. It borrows from the request's records, so recording it allocates only the
/// line written.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEvent<'a> {
    pub time: Timestamp,
    pub request_id: RequestIdent,
    #[serde(serialize_with = "display_opt")]
    pub client: Option<IpAddr>,
    pub key_id: Option<&'a str>,
    pub http_method: &'a str,
    pub path: &'a str,
    pub mcp_method: Option<&'a str>,
    pub name: Option<&'a str>,
    pub era: Option<&'static str>,
    pub status: u16,
    pub rpc_error: Option<i32>,
    pub latency_ms: f64,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub outcome: &'static str,
    pub file_path: Option<&'a str>,
    /// Over-limit rejections of this client summarised into this event (see
    /// [`crate::observability::summary`]); absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
}

impl AuditEvent<'_> {
    /// The event as one line of JSON with its newline: the same object as its `Serialize`
    /// form (a test holds the two together), written field by field because the derived form
    /// escapes every key and formats through `fmt` (a third of the audit's cost).
    pub fn to_json_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        out.extend_from_slice(b"{\"time\":\"");
        out.extend_from_slice(self.time.as_str().as_bytes());
        out.extend_from_slice(b"\",\"request_id\":\"");
        self.request_id.push_to(&mut out);
        out.extend_from_slice(b"\",\"client\":");
        match self.client {
            Some(IpAddr::V4(v4)) => {
                out.push(b'"');
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    out.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
                }
                out.push(b'"');
            }
            Some(IpAddr::V6(v6)) => {
                use std::io::Write;
                let _ = write!(out, "\"{v6}\"");
            }
            None => out.extend_from_slice(b"null"),
        }
        json_str(&mut out, b",\"key_id\":", self.key_id);
        json_str(&mut out, b",\"http_method\":", Some(self.http_method));
        json_str(&mut out, b",\"path\":", Some(self.path));
        json_str(&mut out, b",\"mcp_method\":", self.mcp_method);
        json_str(&mut out, b",\"name\":", self.name);
        json_str(&mut out, b",\"era\":", self.era);
        json_int(&mut out, b",\"status\":", Some(self.status));
        json_int(&mut out, b",\"rpc_error\":", self.rpc_error);
        out.extend_from_slice(b",\"latency_ms\":");
        if self.latency_ms.is_finite() {
            out.extend_from_slice(ryu::Buffer::new().format_finite(self.latency_ms).as_bytes());
        } else {
            out.extend_from_slice(b"null");
        }
        json_int(&mut out, b",\"bytes_in\":", self.bytes_in);
        json_int(&mut out, b",\"bytes_out\":", self.bytes_out);
        json_str(&mut out, b",\"outcome\":", Some(self.outcome));
        json_str(&mut out, b",\"file_path\":", self.file_path);
        if self.suppressed.is_some() {
            json_int(&mut out, b",\"suppressed\":", self.suppressed);
        }
        out.extend_from_slice(b"}\n");
        out
    }
}

/// Appends `key` (`,"name":`) and the value, a JSON string (escaped by serde_json) or `null`.
fn json_str(out: &mut Vec<u8>, key: &[u8], value: Option<&str>) {
    out.extend_from_slice(key);
    match value {
        Some(v) if serde_json::to_writer(&mut *out, v).is_ok() => {}
        _ => out.extend_from_slice(b"null"),
    }
}

/// Appends `key` (`,"name":`) and the value, an integer or `null`.
fn json_int<I: itoa::Integer>(out: &mut Vec<u8>, key: &[u8], value: Option<I>) {
    out.extend_from_slice(key);
    match value {
        Some(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

fn display_opt<T: std::fmt::Display, S: serde::Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => serializer.collect_str(v),
        None => serializer.serialize_none(),
    }
}

/// A request id: `BOOT-N`, a random 32-bit tag of this process in hex and a counter, so ids
/// from two runs never collide in one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestIdent {
    boot: u32,
    n: u64,
}

impl std::fmt::Display for RequestIdent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (buf, len) = self.encode();
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| std::fmt::Error)?)
    }
}

impl Serialize for RequestIdent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl RequestIdent {
    /// The id, `BOOT-N` (8 hex digits, a dash, the counter), in a buffer of its own: at most
    /// 8 + 1 + 20 bytes.
    fn encode(&self) -> ([u8; 29], usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 29];
        for (i, shift) in (0..8).rev().enumerate() {
            buf[i] = HEX[(self.boot >> (shift * 4)) as usize & 0xf];
        }
        buf[8] = b'-';
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(self.n).as_bytes();
        buf[9..9 + digits.len()].copy_from_slice(digits);
        (buf, 9 + digits.len())
    }

    fn push_to(&self, out: &mut Vec<u8>) {
        let (buf, len) = self.encode();
        out.extend_from_slice(&buf[..len]);
    }

    /// As an `X-Request-Id` header value.
    pub fn header_value(&self) -> Option<HeaderValue> {
        let (buf, len) = self.encode();
        HeaderValue::from_bytes(&buf[..len]).ok()
    }
}

/// The outcome word of a status.
pub fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=399 => "ok",
        401 => "unauthorized",
        403 => "forbidden_origin",
        429 => "rate_limited",
        400..=499 => "invalid",
        _ => "error",
    }
}

/// The security event a status stands for, if any.
pub fn security_event(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        401 => Some("auth_failed"),
        403 => Some("forbidden_origin"),
        413 => Some("oversized_body"),
        429 => Some("rate_limited"),
        _ => None,
    }
}

/// An RFC 3339 UTC time with milliseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ`, kept inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Timestamp([u8; 24]);

impl Timestamp {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The time `t` as a [`Timestamp`]. The date-and-seconds part is formatted once per second per
/// thread and reused (formatting it costs more than the rest of an audit event).
pub fn rfc3339(t: SystemTime) -> Timestamp {
    thread_local! {
        static CACHE: std::cell::Cell<(u64, [u8; 24])> = const { std::cell::Cell::new((u64::MAX, [0; 24])) };
    }
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (cached, mut out) = CACHE.get();
    if cached != secs {
        let full = rfc3339_uncached(t);
        out.copy_from_slice(&full.as_bytes()[..24]);
        CACHE.set((secs, out));
    }
    let ms = d.subsec_millis();
    out[20] = b'0' + (ms / 100) as u8;
    out[21] = b'0' + (ms / 10 % 10) as u8;
    out[22] = b'0' + (ms % 10) as u8;
    Timestamp(out)
}

fn rfc3339_uncached(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // days since 1970-01-01 to a civil date (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Where audit events go.
pub struct AuditSink {
    to_file: bool,
    path: Option<std::path::PathBuf>,
    sender: RwLock<Option<mpsc::Sender<Vec<u8>>>>,
    receiver: Mutex<Option<(mpsc::Receiver<Vec<u8>>, std::fs::File)>>,
    dropped: Arc<AtomicU64>,
    reopen: Arc<AtomicBool>,
}

/// Appends whole lines: a write that fails part-way is cut back to where it started (the file
/// never ends in half a line; truncating also gives back the space it took).
fn write_batch(file: &mut std::fs::File, batch: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let start = file.metadata().map(|m| m.len()).ok();
    let written = file.write_all(batch);
    if written.is_err()
        && let Some(start) = start
    {
        let _ = file.set_len(start);
    }
    written
}

fn open_append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditSink(to_file: {})", self.to_file)
    }
}

impl AuditSink {
    /// Audit events go to the diagnostic log.
    pub fn to_log() -> Self {
        Self {
            to_file: false,
            path: None,
            sender: RwLock::new(None),
            receiver: Mutex::new(None),
            dropped: Arc::default(),
            reopen: Arc::default(),
        }
    }

    /// Audit events go to `path` (created 0600 if missing, appended to).
    pub fn to_file(path: &std::path::Path) -> std::io::Result<Self> {
        let file = open_append(path)?;
        let (tx, rx) = mpsc::channel(AUDIT_QUEUE);
        Ok(Self {
            to_file: true,
            path: Some(path.to_owned()),
            sender: RwLock::new(Some(tx)),
            receiver: Mutex::new(Some((rx, file))),
            dropped: Arc::default(),
            reopen: Arc::default(),
        })
    }

    /// Asks the writer to reopen the file by its path (after logrotate renamed it).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
    }

    /// Starts the writer thread (once); it ends after [`Self::close`], having written
    /// everything, and the returned receiver then completes.
    pub fn spawn_writer(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let (mut rx, file) = self
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        let (path, reopen) = (self.path.clone(), self.reopen.clone());
        let dropped = self.dropped.clone();
        let (done, finished) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                // The writer wakes on a timer, not on every event: a request only pushes a line
                // into the queue (no wake-up, no context switch), and every FLUSH_EVERY the
                // writer takes everything queued and writes it in one go.
                let mut file = file;
                let mut batch: Vec<u8> = Vec::with_capacity(256 * 1024);
                let mut failing = false;
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    let mut closed = false;
                    let mut lines = 0u64;
                    batch.clear();
                    loop {
                        match rx.try_recv() {
                            Ok(line) => {
                                batch.extend_from_slice(&line);
                                lines += 1;
                            }
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                    if lines > 0 {
                        match write_batch(&mut file, &batch) {
                            Ok(()) if failing => {
                                failing = false;
                                tracing::warn!("the audit log is written again");
                            }
                            Ok(()) => {}
                            Err(e) => {
                                // The batch is counted as dropped; a partial write was undone,
                                // so the file holds whole lines only.
                                dropped.fetch_add(lines, Ordering::Relaxed);
                                if !failing {
                                    failing = true;
                                    tracing::error!(
                                        error = %e.kind(),
                                        "the audit log could not be written; events are counted as dropped until it can"
                                    );
                                }
                            }
                        }
                    }
                    if reopen.swap(false, Ordering::AcqRel)
                        && let Some(path) = &path
                    {
                        match open_append(path) {
                            Ok(reopened) => {
                                file = reopened;
                                tracing::info!("audit log reopened");
                            }
                            Err(e) => tracing::error!(
                                error = %e.kind(),
                                "the audit log could not be reopened; writing on to the old file"
                            ),
                        }
                    }
                    if closed {
                        let _ = file.sync_data();
                        let _ = done.send(());
                        return;
                    }
                }
            });
        match spawned {
            Ok(_) => Some(finished),
            Err(e) => {
                tracing::error!(error = %e, "the audit writer could not start");
                None
            }
        }
    }

    /// Queues a line (newline included); counts it as dropped if the writer is behind.
    fn write(&self, line: Vec<u8>) {
        let sender = self.sender.read().unwrap_or_else(|e| e.into_inner());
        match sender.as_ref() {
            Some(tx) if tx.try_send(line).is_ok() => {}
            _ => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Stops accepting events; the writer drains what is queued and ends.
    pub fn close(&self) {
        self.sender
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events queued and not yet written.
    pub fn backlog(&self) -> usize {
        self.sender
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
    }

    /// Records one event.
    pub fn record(&self, event: &AuditEvent) {
        if self.to_file {
            self.write(event.to_json_line());
        } else {
            tracing::info!(
                target: "audit",
                time = event.time.as_str(),
                request_id = %event.request_id,
                client = %Client(event.client),
                key_id = event.key_id.unwrap_or("-"),
                http_method = %event.http_method,
                path = ?event.path,
                mcp_method = ?event.mcp_method,
                name = ?event.name,
                era = event.era.unwrap_or("-"),
                status = event.status,
                rpc_error = ?event.rpc_error,
                latency_ms = event.latency_ms,
                bytes_in = ?event.bytes_in,
                bytes_out = ?event.bytes_out,
                outcome = event.outcome,
                file_path = ?event.file_path,
                "request"
            );
        }
    }
}

/// Limits security-event log lines per kind and second.
#[derive(Debug, Default)]
pub struct LogThrottle {
    /// kind → (start of the current second, lines logged in it, lines suppressed since the last)
    state: Mutex<std::collections::HashMap<&'static str, (Instant, u32, u64)>>,
}

impl LogThrottle {
    /// Whether to log an event of `kind` now; if so, how many were suppressed before it.
    pub fn admit(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let entry = state.entry(kind).or_insert((now, 0, 0));
        if now.saturating_duration_since(entry.0) >= std::time::Duration::from_secs(1) {
            entry.0 = now;
            entry.1 = 0;
        }
        if entry.1 < SECURITY_LOG_PER_SECOND {
            entry.1 += 1;
            let suppressed = entry.2;
            entry.2 = 0;
            Some(suppressed)
        } else {
            entry.2 += 1;
            None
        }
    }
}

/// What the audit policy needs.
#[derive(Debug, Clone)]
pub struct Observability {
    pub audit: Arc<AuditSink>,
    pub metrics: Arc<Metrics>,
    pub summary: Arc<RejectionSummary>,
    throttle: Arc<LogThrottle>,
    boot: u32,
    counter: Arc<AtomicU64>,
}

impl Observability {
    pub fn new(audit: Arc<AuditSink>, metrics: Arc<Metrics>) -> Self {
        let boot = crate::keys::random_token(4).ok().map_or(0, |t| {
            t.bytes()
                .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
        });
        Self {
            audit,
            metrics,
            summary: Arc::new(RejectionSummary::new(std::time::Duration::from_secs(60))),
            throttle: Arc::new(LogThrottle::default()),
            boot,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Over-limit rejections are summarised per this window (the rate-limit window).
    pub fn with_summary_window(mut self, window: std::time::Duration) -> Self {
        self.summary = Arc::new(RejectionSummary::new(window));
        self
    }

    /// Writes a summary event for every client whose over-limit rejections were only counted
    /// and whose window has passed (`all`: every one, at shutdown).
    pub fn flush_summaries(&self, all: bool) {
        let pending = if all {
            self.summary.drain_all()
        } else {
            self.summary.drain_expired(Instant::now())
        };
        for (client, suppressed) in pending {
            let event = AuditEvent {
                time: rfc3339(SystemTime::now()),
                request_id: self.next_id(),
                client,
                key_id: None,
                http_method: "-",
                path: "-",
                mcp_method: None,
                name: None,
                era: None,
                status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
                rpc_error: None,
                latency_ms: 0.0,
                bytes_in: None,
                bytes_out: None,
                outcome: "rate_limited",
                file_path: None,
                suppressed: Some(suppressed),
            };
            self.audit.record(&event);
        }
    }

    /// Flushes summaries every half window until the task is aborted.
    pub fn spawn_summary_flusher(&self) -> tokio::task::JoinHandle<()> {
        let obs = self.clone();
        let every = (self.summary.window() / 2).max(std::time::Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                obs.flush_summaries(false);
            }
        })
    }

    /// A security event outside a request (a refused connection, a failed key reload): counted
    /// always, logged at most a few times a second per kind.
    pub fn security_event(&self, kind: &'static str, client: Option<IpAddr>) {
        self.metrics.security_event(kind);
        if let Some(suppressed) = self.throttle.admit(kind, Instant::now()) {
            tracing::warn!(
                target: "security",
                event = kind,
                client = %Client(client),
                suppressed_before = suppressed,
                "security event"
            );
        }
    }

    fn next_id(&self) -> RequestIdent {
        RequestIdent {
            boot: self.boot,
            n: self.counter.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }
}

/// Policy: one audit event per request, security events, metrics, `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct Audit(pub Observability);

/// What the audit notes of a request before it goes on.
#[derive(Debug)]
pub struct Pending {
    obs: Observability,
    started: Instant,
    request_id: RequestIdent,
    client: Option<IpAddr>,
    http_method: Method,
    path: Cow<'static, str>,
    bytes_in: Option<u64>,
}

impl RequestPolicy for Audit {
    type Carry = Pending;

    fn before(&self, request: &mut Request) -> Result<Pending, Rejection> {
        let path = match request.uri().path() {
            "/mcp" => Cow::Borrowed("/mcp"),
            other => Cow::Owned(cut(other)),
        };
        Ok(Pending {
            obs: self.0.clone(),
            started: Instant::now(),
            request_id: self.0.next_id(),
            client: client_ip(request.extensions()),
            http_method: request.method().clone(),
            path,
            bytes_in: request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        })
    }

    fn after(pending: Pending, response: &mut Response) {
        pending.finish(response);
    }
}

/// An optional client address as a log field (`-` when unknown).
struct Client(Option<IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl Pending {
    fn finish(self, response: &mut Response) {
        let obs = &self.obs;
        let latency = self.started.elapsed();
        let status = response.status();
        let ext = response.extensions();
        let call = ext.get::<McpCall>();
        let note = ext
            .get::<NoteCell>()
            .map(|n| n.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        let event = AuditEvent {
            time: rfc3339(SystemTime::now()),
            request_id: self.request_id,
            client: self.client,
            key_id: ext.get::<Authenticated>().map(|a| a.key_id.as_str()),
            http_method: self.http_method.as_str(),
            path: &self.path,
            mcp_method: call.map(|c| &*c.method),
            name: call.and_then(|c| c.name.as_deref()),
            era: call.and_then(|c| c.era).map(|e| match e {
                Era::Legacy => "2025",
                Era::Modern => "2026",
            }),
            status: status.as_u16(),
            rpc_error: ext.get::<ErrorCode>().map(|c| c.0),
            latency_ms: latency.as_secs_f64() * 1000.0,
            bytes_in: self.bytes_in,
            bytes_out: axum::body::HttpBody::size_hint(response.body()).exact(),
            outcome: outcome(status),
            file_path: note.path.as_deref(),
            suppressed: None,
        };
        obs.metrics
            .request(event.outcome, method_label(event.mcp_method), latency);
        if event.mcp_method == Some("tools/call")
            && let (Some(tool), Some(error)) = (event.name, note.tool_error)
        {
            obs.metrics.tool_call(tool, error);
        }
        let security = security_event(status).or(note.escape.then_some("sandbox_escape"));
        if let Some(kind) = security {
            obs.metrics.security_event(kind);
            if let Some(suppressed) = obs.throttle.admit(kind, Instant::now()) {
                tracing::warn!(
                    target: "security",
                    event = kind,
                    request_id = %event.request_id,
                    client = %Client(event.client),
                    path = ?event.path,
                    file_path = ?event.file_path,
                    suppressed_before = suppressed,
                    "security event"
                );
            }
        }
        // Over its budget, a client's rejections are summarised, not written one by one.
        let mut event = event;
        let written = if ext.get::<OverLimit>().is_some() {
            obs.summary
                .admit(self.client, Instant::now())
                .map(|n| event.suppressed = (n > 0).then_some(n))
                .is_some()
        } else {
            true
        };
        if written {
            obs.audit.record(&event);
        }
        if let Some(v) = event.request_id.header_value() {
            response.headers_mut().insert(REQUEST_ID.clone(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc;

    #[test]
    fn calls_record_method_and_name_cut_to_size() {
        let long = "x".repeat(1000);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{long}"}}}}"#
        );
        let m = jsonrpc::parse(body.as_bytes()).expect("parse");
        let call = McpCall::of(&m).expect("call");
        assert_eq!(call.method, "tools/call");
        assert_eq!(call.name.map(|n| n.len()), Some(MAX_FIELD));
    }

    #[test]
    fn outcomes_and_security_events() {
        assert_eq!(outcome(StatusCode::OK), "ok");
        assert_eq!(outcome(StatusCode::ACCEPTED), "ok");
        assert_eq!(outcome(StatusCode::UNAUTHORIZED), "unauthorized");
        assert_eq!(outcome(StatusCode::FORBIDDEN), "forbidden_origin");
        assert_eq!(outcome(StatusCode::TOO_MANY_REQUESTS), "rate_limited");
        assert_eq!(outcome(StatusCode::NOT_FOUND), "invalid");
        assert_eq!(outcome(StatusCode::INTERNAL_SERVER_ERROR), "error");
        assert_eq!(
            security_event(StatusCode::PAYLOAD_TOO_LARGE),
            Some("oversized_body")
        );
        assert_eq!(security_event(StatusCode::OK), None);
    }

    #[test]
    fn the_cached_and_uncached_formats_agree() {
        for ms in [
            0u64,
            999,
            1_795_622_400_123,
            1_795_622_400_999,
            1_795_622_401_000,
        ] {
            let t = UNIX_EPOCH + std::time::Duration::from_millis(ms);
            assert_eq!(rfc3339(t).as_str(), rfc3339_uncached(t), "{ms}");
        }
    }

    #[test]
    fn rfc3339_formats_utc_times() {
        assert_eq!(rfc3339(UNIX_EPOCH).as_str(), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_622_400_123);
        assert_eq!(rfc3339(t).as_str(), "2026-11-25T16:00:00.123Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap).as_str(), "2000-02-29T00:00:00.000Z");
    }

    #[tokio::test(start_paused = true)]
    async fn security_log_lines_are_throttled_per_kind_and_the_rest_counted() {
        let t = LogThrottle::default();
        let now = Instant::now();
        for _ in 0..SECURITY_LOG_PER_SECOND {
            assert_eq!(t.admit("auth_failed", now), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(t.admit("auth_failed", now), None);
        }
        assert_eq!(t.admit("rate_limited", now), Some(0), "kinds are separate");
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert_eq!(
            t.admit("auth_failed", Instant::now()),
            Some(5),
            "the next line says how many were not logged"
        );
    }

    #[test]
    fn the_written_line_is_the_serialized_event() {
        let awkward = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} é 🦀 \u{2028}";
        let mut event = AuditEvent {
            time: rfc3339(SystemTime::now()),
            request_id: RequestIdent {
                boot: 0x00ab_cdef,
                n: u64::MAX,
            },
            client: Some("203.0.113.7".parse().expect("ip")),
            key_id: Some("ops"),
            http_method: "POST",
            path: awkward,
            mcp_method: Some("tools/call"),
            name: Some(awkward),
            era: Some("2026"),
            status: 200,
            rpc_error: Some(-32602),
            latency_ms: 0.123_456_789,
            bytes_in: Some(0),
            bytes_out: Some(u64::MAX),
            outcome: "ok",
            file_path: Some(awkward),
            suppressed: Some(7),
        };
        let check = |event: &AuditEvent| {
            let line = event.to_json_line();
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1, "one line");
            let written: Value = serde_json::from_slice(&line).expect("json");
            assert_eq!(written, serde_json::to_value(event).expect("serialize"));
        };
        check(&event);
        event.client = Some("2001:db8::1".parse().expect("ip"));
        event.latency_ms = f64::NAN;
        check(&event);
        event.client = None;
        event.key_id = None;
        event.mcp_method = None;
        event.name = None;
        event.era = None;
        event.rpc_error = None;
        event.bytes_in = None;
        event.bytes_out = None;
        event.file_path = None;
        check(&event);
        assert_eq!(
            event.request_id.header_value(),
            Some(HeaderValue::from_static("00abcdef-18446744073709551615"))
        );
    }

    /// A `GET /` answered 200, with nothing optional.
    fn plain_event() -> AuditEvent<'static> {
        AuditEvent {
            time: rfc3339(SystemTime::now()),
            request_id: RequestIdent { boot: 1, n: 1 },
            client: None,
            key_id: None,
            http_method: "GET",
            path: "/",
            mcp_method: None,
            name: None,
            era: None,
            status: 200,
            rpc_error: None,
            latency_ms: 0.0,
            bytes_in: None,
            bytes_out: None,
            outcome: "ok",
            file_path: None,
            suppressed: None,
        }
    }

    #[tokio::test]
    async fn a_full_queue_counts_drops_instead_of_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = AuditSink::to_file(&dir.path().join("audit.log")).expect("open");
        let event = plain_event();
        // no writer running: the queue fills, then every further event is counted as dropped
        for _ in 0..AUDIT_QUEUE + 10 {
            sink.record(&event);
        }
        assert_eq!(sink.backlog(), AUDIT_QUEUE);
        assert_eq!(sink.dropped(), 10);
        let writer = sink.spawn_writer().expect("writer");
        sink.close();
        writer.await.expect("writer ends");
        sink.reopen();
        let written = std::fs::read_to_string(dir.path().join("audit.log")).expect("read");
        assert_eq!(
            written.lines().count(),
            AUDIT_QUEUE,
            "everything queued was written on close"
        );
    }

    #[tokio::test]
    async fn a_full_disk_counts_the_events_as_dropped_and_writing_resumes_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        std::os::unix::fs::symlink("/dev/full", &path).expect("ln");
        let sink = AuditSink::to_file(&path).expect("open");
        let event = plain_event();
        let writer = sink.spawn_writer().expect("writer");
        for _ in 0..3 {
            sink.record(&event);
        }
        let mut waited = 0;
        while sink.dropped() < 3 && waited < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            waited += 1;
        }
        assert_eq!(sink.dropped(), 3, "the failed writes are counted");
        // the disk frees up: here, the path names a real file again and SIGHUP reopens it
        std::fs::remove_file(&path).expect("rm");
        sink.reopen();
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        sink.record(&event);
        sink.close();
        writer.await.expect("writer ends");
        let written = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            written.lines().count(),
            1,
            "writing resumed with whole lines"
        );
        assert_eq!(sink.dropped(), 3);
    }
}
