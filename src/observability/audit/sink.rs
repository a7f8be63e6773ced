//! Where audit events go: the audit file (a writer thread fed by a bounded queue, reopened
//! after SIGHUP) or the diagnostic log.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;

use super::event::{AuditEvent, rfc3339};
use crate::mcp::tasks::TaskEvent;
use crate::observability::security::Client;

/// Audit events waiting for the writer, at most (about 8 MiB of lines when full).
pub const AUDIT_QUEUE: usize = 32_768;
/// How often the writer empties the queue into the file: the longest an event waits.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
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

    /// Records one task event (2026-07-28 tasks): a line of its own, `"event":"task"`.
    pub fn record_task(&self, event: &TaskEvent) {
        if self.to_file {
            let line = serde_json::json!({
                "time": rfc3339(std::time::SystemTime::now()).as_str(),
                "event": "task",
                "task_event": event.event,
                "task_id": event.task_id.as_ref(),
                "key_id": event.principal.as_ref(),
                "tool": event.tool.as_ref(),
            });
            let mut bytes = line.to_string().into_bytes();
            bytes.push(b'\n');
            self.write(bytes);
        } else {
            tracing::info!(
                target: "audit",
                task_event = event.event,
                task_id = %event.task_id,
                key_id = %event.principal,
                tool = ?event.tool,
                "task"
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observability::audit::event::{RequestIdent, rfc3339};
    use std::time::SystemTime;

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
            policy: None,
        }
    }

    #[tokio::test]
    async fn a_task_event_is_one_json_line_naming_the_key_id_tool_and_task() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let sink = AuditSink::to_file(&path).expect("open");
        let writer = sink.spawn_writer().expect("writer");
        sink.record_task(&TaskEvent {
            event: "cancelled",
            task_id: "T0ab".into(),
            principal: "ops\"\n{".into(),
            tool: "search_files".into(),
        });
        sink.close();
        writer.await.expect("writer ends");
        let written = std::fs::read_to_string(&path).expect("read");
        assert_eq!(written.lines().count(), 1, "{written}");
        let line: serde_json::Value = serde_json::from_str(&written).expect("JSON");
        assert_eq!(line["event"], "task");
        assert_eq!(line["task_event"], "cancelled");
        assert_eq!(line["task_id"], "T0ab");
        assert_eq!(line["key_id"], "ops\"\n{", "escaped, so no forged line");
        assert_eq!(line["tool"], "search_files");
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
