//! The audit's batching writer, one for both destinations (the audit file and the diagnostic
//! log on stderr).
//!
//! A request formats its line into a buffer of its worker thread (no allocation once the
//! buffer has grown) and appends it, under a lock held for one copy, to one shared
//! [`LineQueue`]. A thread of its own wakes when [`FLUSH_BYTES`] are waiting or
//! [`FLUSH_EVERY`] has passed, swaps the queue's buffer for its spare one and writes everything
//! in one go. Flushing by size keeps both buffers small enough to stay in the CPU's cache:
//! with a time alone, a busy server appended to a megabyte of cold memory per flush, and the
//! cache misses of that copy cost more than formatting the line. So a request never waits on a disk, a
//! full pipe or a slow journal, and pays no wake-up, channel node or allocation per line.
//!
//! Decisions:
//! - **Bounded in bytes**: at most [`QUEUE_BYTES`] wait; a line that does not fit is counted as
//!   dropped (`mcp_audit_dropped_events`, `/health/details`), never lost silently, and the
//!   request goes on. Before, a slow stderr (a pipe to a journal that stalls) blocked the
//!   request that logged.
//! - **Formatting stays on the request path.** Moving it to the writer would need an owned copy
//!   of every borrowed field (the key id, the tool name, the path), allocations on the request
//!   path that cost about what formatting does; and where the server is pinned to one core, the
//!   same core does the work either way.
//! - **Whole lines only.** A file write that fails part-way is cut back to where it started;
//!   the batch is counted as dropped. stderr is written under the process's stderr lock, in
//!   chunks of whole lines, so the diagnostic log's own lines never land inside an audit line.
//! - The writer is not a task on the blocking pool the file tools share, so a burst of file
//!   reads cannot hold the audit back. After SIGHUP it reopens the file by its path, so
//!   logrotate's rename-then-signal works.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// How much may wait for the writer, at most, in bytes (about 30,000 request lines).
pub const QUEUE_BYTES: usize = 8 << 20;
/// How often the writer empties the queue when it fills slowly: the longest a line waits.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// The writer is woken when this much is waiting (a wake-up per few hundred lines).
pub const FLUSH_BYTES: usize = 64 * 1024;
/// stderr is written in chunks of whole lines of about this size, so the log's other lines
/// wait for one chunk at most.
const STDERR_CHUNK: usize = 64 * 1024;
/// A spare buffer grown over this (while the writer was held up) is given back after it is
/// written.
const KEEP_SPARE: usize = 4 * FLUSH_BYTES;

/// Lines waiting for the writer.
#[derive(Debug, Default)]
pub struct LineQueue {
    waiting: Mutex<Waiting>,
    /// Signalled when [`FLUSH_BYTES`] are waiting, or at the close.
    filled: Condvar,
    dropped: AtomicU64,
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct Waiting {
    bytes: Vec<u8>,
    lines: usize,
}

thread_local! {
    /// The line being formatted, per worker thread; kept between lines.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl LineQueue {
    /// Formats one line with `format` and queues it; counts it as dropped if the queue is full
    /// or closed.
    pub fn push_with(&self, format: impl FnOnce(&mut Vec<u8>)) {
        SCRATCH.with_borrow_mut(|line| {
            line.clear();
            format(line);
            self.push(line);
        });
    }

    /// Queues `line` (newline included).
    pub fn push(&self, line: &[u8]) {
        if self.closed.load(Ordering::Acquire) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.bytes.len() + line.len() > QUEUE_BYTES {
            drop(waiting);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = waiting.bytes.len();
        waiting.bytes.extend_from_slice(line);
        waiting.lines += 1;
        let wake = before < FLUSH_BYTES && waiting.bytes.len() >= FLUSH_BYTES;
        drop(waiting);
        if wake {
            self.filled.notify_one();
        }
    }

    /// Swaps everything waiting into `spare` (which must be empty); returns how many lines.
    fn take(&self, spare: &mut Vec<u8>) -> usize {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut waiting.bytes, spare);
        std::mem::take(&mut waiting.lines)
    }

    /// Waits until [`FLUSH_BYTES`] are waiting, the queue is closed, or [`FLUSH_EVERY`] passed.
    fn wait_for_lines(&self) {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .filled
            .wait_timeout_while(waiting, FLUSH_EVERY, |w| {
                w.bytes.len() < FLUSH_BYTES && !self.closed.load(Ordering::Acquire)
            })
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Stops accepting lines (later ones are counted as dropped).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Under the lock, so a writer between its check and its wait cannot miss it.
        let _waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        self.filled.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Lines queued and not yet written.
    pub fn backlog(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).lines
    }
}

/// Where the writer writes.
#[derive(Debug)]
pub enum Output {
    /// The audit file, reopened by its path when `reopen` is set.
    File {
        file: std::fs::File,
        path: std::path::PathBuf,
        reopen: Arc<AtomicBool>,
    },
    /// The process's stderr (the diagnostic log).
    Stderr,
}

/// Opens `path` for appending, created with mode 0600.
pub fn open_append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Appends whole lines: a write that fails part-way is cut back to where it started (the file
/// never ends in half a line; truncating also gives back the space it took).
fn write_file(file: &mut std::fs::File, batch: &[u8]) -> std::io::Result<()> {
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

/// Where the next stderr chunk of `rest` ends: after the first newline past
/// [`STDERR_CHUNK`] bytes, or at its end.
fn chunk_end(rest: &[u8]) -> usize {
    if rest.len() <= STDERR_CHUNK {
        return rest.len();
    }
    rest[STDERR_CHUNK..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(rest.len(), |i| STDERR_CHUNK + i + 1)
}

/// Writes to stderr in chunks that end at a line's end, each under the stderr lock.
fn write_stderr(batch: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut rest = batch;
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(chunk_end(rest));
        std::io::stderr().lock().write_all(chunk)?;
        rest = after;
    }
    Ok(())
}

impl Output {
    fn write(&mut self, batch: &[u8]) -> std::io::Result<()> {
        match self {
            Self::File { file, .. } => write_file(file, batch),
            Self::Stderr => write_stderr(batch),
        }
    }

    fn reopen_if_asked(&mut self) {
        let Self::File { file, path, reopen } = self else {
            return;
        };
        if !reopen.swap(false, Ordering::AcqRel) {
            return;
        }
        match open_append(path) {
            Ok(reopened) => {
                *file = reopened;
                tracing::info!("audit log reopened");
            }
            Err(e) => tracing::error!(
                error = %e.kind(),
                "the audit log could not be reopened; writing on to the old file"
            ),
        }
    }

    fn finish(&mut self) {
        if let Self::File { file, .. } = self {
            let _ = file.sync_data();
        }
    }
}

/// Starts the writer thread: when [`FLUSH_BYTES`] are waiting, or every [`FLUSH_EVERY`], it
/// writes what `queue` holds to `output`;
/// after [`LineQueue::close`] it writes what is left and ends, and the receiver completes.
pub fn spawn(
    queue: Arc<LineQueue>,
    mut output: Output,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            let mut spare: Vec<u8> = Vec::new();
            let mut failing = false;
            loop {
                queue.wait_for_lines();
                // Read before taking: a line pushed before the close is in this batch.
                let closed = queue.is_closed();
                spare.clear();
                let lines = queue.take(&mut spare);
                if lines > 0 {
                    match output.write(&spare) {
                        Ok(()) if failing => {
                            failing = false;
                            tracing::warn!("the audit log is written again");
                        }
                        Ok(()) => {}
                        Err(e) => {
                            queue.dropped.fetch_add(lines as u64, Ordering::Relaxed);
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
                if spare.capacity() > KEEP_SPARE {
                    spare = Vec::new();
                }
                output.reopen_if_asked();
                if closed {
                    output.finish();
                    let _ = done.send(());
                    return;
                }
            }
        })?;
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_counts_drops_instead_of_blocking() {
        let queue = LineQueue::default();
        let line = [b'x'; 1023];
        let fits = QUEUE_BYTES / 1024;
        for _ in 0..fits + 10 {
            queue.push_with(|out| {
                out.extend_from_slice(&line);
                out.push(b'\n');
            });
        }
        assert_eq!(queue.backlog(), fits);
        assert_eq!(queue.dropped(), 10);
        let mut spare = Vec::new();
        assert_eq!(queue.take(&mut spare), fits);
        assert_eq!(spare.len(), fits * 1024);
        assert_eq!(queue.backlog(), 0, "taken, room again");
        queue.push(b"after\n");
        assert_eq!(queue.backlog(), 1);
        queue.close();
        queue.push(b"closed\n");
        assert_eq!(queue.dropped(), 11, "a line after the close is counted");
    }

    #[test]
    fn stderr_chunks_end_at_line_ends() {
        let mut batch = Vec::new();
        for i in 0..5_000 {
            batch.extend_from_slice(format!("line {i} {}\n", "y".repeat(i % 97)).as_bytes());
        }
        let mut rest = &batch[..];
        let mut chunks = 0;
        while !rest.is_empty() {
            let cut = chunk_end(rest);
            assert!(cut <= STDERR_CHUNK + 200, "chunk {chunks} is {cut} bytes");
            assert_eq!(rest[cut - 1], b'\n', "chunk {chunks} ends a line");
            rest = &rest[cut..];
            chunks += 1;
        }
        assert!(chunks > 1, "the batch was cut: {chunks}");
    }
}
