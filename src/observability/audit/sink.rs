//! Where audit events go: the audit file or the diagnostic log (stderr, in the log's format),
//! both through the batching writer of [`super::writer`].
//!
//! Without `--audit-log` the events go to the diagnostic log when its filter lets target
//! `audit` through at `info` (`MCP_LOG=warn` or `MCP_LOG=info,audit=off` turn them off). The
//! filter is read once, when the sink is made: the server installs its log before it opens
//! the sink, and `MCP_LOG` does not change while it runs.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use super::event::{AuditEvent, rfc3339};
use super::line::LineFormat;
use super::writer::{self, LineQueue, Output};
use crate::config::LogFormat;
use crate::mcp::tasks::TaskEvent;

/// Where audit events go.
pub struct AuditSink {
    format: LineFormat,
    /// `None`: the audit is off (the log's filter drops it).
    queue: Option<Arc<LineQueue>>,
    output: Mutex<Option<Output>>,
    reopen: Arc<AtomicBool>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditSink({:?})", self.format)
    }
}

impl AuditSink {
    /// Audit events go to the diagnostic log (stderr) in `format`, if its filter lets target
    /// `audit` through at `info`.
    pub fn to_log(format: LogFormat) -> Self {
        let on = tracing::enabled!(target: "audit", tracing::Level::INFO);
        Self {
            format: match format {
                LogFormat::Text => LineFormat::LogText,
                LogFormat::Json => LineFormat::LogJson,
            },
            queue: on.then(Arc::default),
            output: Mutex::new(on.then_some(Output::Stderr)),
            reopen: Arc::default(),
        }
    }

    /// Audit events go to `path` (created 0600 if missing, appended to).
    pub fn to_file(path: &std::path::Path) -> std::io::Result<Self> {
        let file = writer::open_append(path)?;
        let reopen = Arc::new(AtomicBool::new(false));
        Ok(Self {
            format: LineFormat::File,
            queue: Some(Arc::default()),
            output: Mutex::new(Some(Output::File {
                file,
                path: path.to_owned(),
                reopen: reopen.clone(),
            })),
            reopen,
        })
    }

    /// Asks the writer to reopen the file by its path (after logrotate renamed it).
    pub fn reopen(&self) {
        self.reopen
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Starts the writer thread (once); it ends after [`Self::close`], having written
    /// everything, and the returned receiver then completes.
    pub fn spawn_writer(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let output = self
            .output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        let queue = self.queue.clone()?;
        match writer::spawn(queue, output) {
            Ok(finished) => Some(finished),
            Err(e) => {
                tracing::error!(error = %e, "the audit writer could not start");
                None
            }
        }
    }

    /// Stops accepting events; the writer drains what is queued and ends.
    pub fn close(&self) {
        if let Some(queue) = &self.queue {
            queue.close();
        }
    }

    pub fn dropped(&self) -> u64 {
        self.queue.as_ref().map_or(0, |q| q.dropped())
    }

    /// Events queued and not yet written.
    pub fn backlog(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.backlog())
    }

    /// Records one task event (2026-07-28 tasks): a line of its own (`"event":"task"` in the
    /// file).
    pub fn record_task(&self, event: &TaskEvent) {
        if let Some(queue) = &self.queue {
            let time = rfc3339(std::time::SystemTime::now());
            queue.push_with(|out| self.format.write_task(time, event, out));
        }
    }

    /// Records one event.
    pub fn record(&self, event: &AuditEvent) {
        if let Some(queue) = &self.queue {
            queue.push_with(|out| self.format.write_event(event, out));
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
            latency_us: 0,
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
    async fn a_full_queue_counts_drops_instead_of_blocking_and_close_writes_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = AuditSink::to_file(&dir.path().join("audit.log")).expect("open");
        let event = plain_event();
        // no writer running: the queue fills, then every further event is counted as dropped
        let mut recorded = 0;
        while sink.dropped() == 0 {
            sink.record(&event);
            recorded += 1;
            assert!(recorded < 1_000_000, "the queue is bounded");
        }
        for _ in 0..9 {
            sink.record(&event);
        }
        let queued = sink.backlog();
        assert_eq!(queued, recorded - 1);
        assert_eq!(sink.dropped(), 10);
        let writer = sink.spawn_writer().expect("writer");
        sink.close();
        writer.await.expect("writer ends");
        let written = std::fs::read_to_string(dir.path().join("audit.log")).expect("read");
        assert_eq!(
            written.lines().count(),
            queued,
            "everything queued was written on close"
        );
        sink.record(&event);
        assert_eq!(sink.dropped(), 11, "after the close, counted");
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
