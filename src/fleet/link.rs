//! [`RedisLink`]: the one connection an instance keeps to Redis, whether Redis answers, and
//! the figures an operator watches (round trips, outages, decisions made without Redis).
//!
//! Every command runs under [`OP_TIMEOUT`]: a Redis that is slow is treated as a Redis that is
//! down, since a request must not wait on it. The first failure marks the link down (one
//! warning in the log) and starts a probe that sends `PING` with exponential backoff (100 ms
//! doubling to 5 s); the first answer marks it up again (one line in the log). While it is
//! down, nothing on the request path talks to Redis: the callers use their fallback.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;

/// The longest a command may take before Redis counts as down.
pub const OP_TIMEOUT: Duration = Duration::from_millis(250);
const PROBE_FIRST: Duration = Duration::from_millis(100);
const PROBE_MOST: Duration = Duration::from_secs(5);

/// The figures of a link (all since start).
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Commands sent to Redis.
    pub round_trips: AtomicU64,
    /// Times Redis went from answering to not answering.
    pub outages: AtomicU64,
    /// Rate-limit decisions taken by the fallback because Redis did not answer.
    pub fallback_decisions: AtomicU64,
}

/// A connection to Redis that knows whether it works.
pub struct RedisLink {
    manager: ConnectionManager,
    up: AtomicBool,
    probing: AtomicBool,
    pub stats: LinkStats,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        write!(f, "RedisLink(up: {})", self.is_up())
    }
}

impl RedisLink {
    /// A link over `manager` (which connects lazily and reconnects by itself), taken to be up
    /// until a command fails.
    pub fn new(manager: ConnectionManager) -> Arc<Self> {
        Arc::new(Self {
            manager,
            up: AtomicBool::new(true),
            probing: AtomicBool::new(false),
            stats: LinkStats::default(),
        })
    }

    /// Whether the last command (or probe) got an answer.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Runs one command (one round trip); `None` if Redis failed or took longer than
    /// [`OP_TIMEOUT`], and the link is then down.
    pub async fn run<T, F, Fut>(self: &Arc<Self>, command: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(OP_TIMEOUT, command(self.manager.clone())).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                self.down(e.code().unwrap_or("connection"));
                None
            }
            Err(_) => {
                self.down("timeout");
                None
            }
        }
    }

    /// `SET key value PX ms` (one round trip); false if Redis did not answer.
    pub async fn set_expiring(self: &Arc<Self>, key: String, value: String, ms: u64) -> bool {
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ms.max(1))
                .query_async::<()>(&mut c)
                .await
        })
        .await
        .is_some()
    }

    /// Marks the link down and starts the probe, once per outage.
    fn down(self: &Arc<Self>, why: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            self.stats.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                reason = why,
                "Redis is not answering: shared budgets and sessions fall back until it does"
            );
        }
        if !self.probing.swap(true, Ordering::Relaxed) {
            tokio::spawn(probe(Arc::downgrade(self)));
        }
    }

    /// Asks Redis whether it answers (one round trip).
    pub async fn ping(self: &Arc<Self>) -> bool {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .is_some()
    }
}

/// Pings with backoff until Redis answers, then marks the link up.
async fn probe(link: Weak<RedisLink>) {
    let mut wait = PROBE_FIRST;
    loop {
        tokio::time::sleep(wait).await;
        let Some(link) = link.upgrade() else { return };
        let mut manager = link.manager.clone();
        let answered = tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut manager),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if answered {
            link.probing.store(false, Ordering::Relaxed);
            link.up.store(true, Ordering::Relaxed);
            tracing::info!("Redis answers again: shared budgets and sessions resume");
            return;
        }
        wait = (wait * 2).min(PROBE_MOST);
    }
}
