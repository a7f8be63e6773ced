//! The file system's share of the blocking pool: at most [`MAX_FILE_JOBS`] file jobs (tool
//! calls, resource reads and listings, completions) run at once, and one that cannot start
//! within [`QUEUE_WAIT`] is refused with a clear "busy" error instead of waiting without bound.
//!
//! Threat: a burst of expensive calls (large reads, deep searches) from one or many clients,
//! queueing more work than the pool can ever catch up with, while every request in the queue
//! holds its connection and memory. The pool itself is bounded in `main.rs`; this bounds the
//! queue in front of it.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Semaphore;

/// File jobs running at once, at most (the blocking pool has this many threads).
pub const MAX_FILE_JOBS: usize = 8;
/// How long a file job may wait for a slot.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// No slot came free within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy with other file operations; retry in a moment")]
pub struct Busy;

/// A bounded set of slots for blocking file work.
#[derive(Debug)]
pub struct FileJobs {
    slots: Semaphore,
    wait: Duration,
}

impl FileJobs {
    pub fn new(slots: usize, wait: Duration) -> Self {
        Self {
            slots: Semaphore::new(slots),
            wait,
        }
    }

    /// The server's one instance.
    pub fn global() -> &'static FileJobs {
        static JOBS: OnceLock<FileJobs> = OnceLock::new();
        JOBS.get_or_init(|| FileJobs::new(MAX_FILE_JOBS, QUEUE_WAIT))
    }

    /// Runs `work` on the blocking pool once a slot is free; [`Busy`] if none frees up in time.
    /// A panic in `work` is `Ok(None)`.
    pub async fn run<T, F>(&self, work: F) -> Result<Option<T>, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, self.slots.acquire())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let result = tokio::task::spawn_blocking(work).await.ok();
        drop(permit);
        Ok(result)
    }

    /// Runs a future while holding a slot (for tests and callers that bring their own task).
    pub async fn hold<T>(&self, work: impl Future<Output = T>) -> Result<T, Busy> {
        let _permit = tokio::time::timeout(self.wait, self.slots.acquire())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        Ok(work.await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_job_that_cannot_start_in_time_is_refused_as_busy() {
        let jobs = Arc::new(FileJobs::new(2, Duration::from_secs(5)));
        let (release, released) = tokio::sync::watch::channel(false);
        let mut holders = Vec::new();
        for _ in 0..2 {
            let (jobs, mut released) = (jobs.clone(), released.clone());
            holders.push(tokio::spawn(async move {
                jobs.hold(async move {
                    let _ = released.wait_for(|r| *r).await;
                })
                .await
            }));
        }
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        assert_eq!(jobs.run(|| 1).await, Err(Busy));
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(5),
            "after the queue wait"
        );
        release.send(true).expect("release");
        for h in holders {
            assert!(h.await.expect("holder").is_ok());
        }
        assert_eq!(jobs.run(|| 2).await, Ok(Some(2)), "slots come back");
        drop(released);
    }
}
