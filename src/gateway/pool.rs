//! The upstream processes: one per principal (a key, or a token's subject), or with
//! [`PoolLimits::per_session`] one per 2025-era session of a principal; never shared across
//! principals. Started on the first call and stopped after [`PoolLimits::idle`] without one,
//! when its session ends (at the next sweep), and at shutdown. One principal's sessions hold
//! at most [`PoolLimits::max_per_key`] processes, so no key can take the whole pool. At most [`PoolLimits::max_processes`] run at once; a call that would
//! need one more is refused (the server stays up). A process that exits is started again on
//! its principal's next call, no sooner than its backoff allows (1 s, doubling to 30 s, reset by
//! a start that lasts a minute). Every start lists the upstream's tools, so what each process
//! offers is checked against the pins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::child::{Spawn, Upstream};
use super::pins::digest;
use crate::error::RpcError;
use crate::mcp::session::SessionState;
use crate::security::principal::Principal;

/// The bounds on upstream processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    pub max_processes: usize,
    pub idle: Duration,
    /// One process per 2025-era session (and per key for requests without one), for
    /// upstreams that keep state per client.
    pub per_session: bool,
    /// Processes one principal's sessions may hold at once (per-session scope).
    pub max_per_key: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        Self {
            max_processes: 32,
            idle: Duration::from_secs(600),
            per_session: false,
            max_per_key: 4,
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long resets its principal's backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// One principal's upstream process and what it offered when it started.
#[derive(Debug)]
pub struct Running {
    pub upstream: Arc<Upstream>,
    /// Tool name → digest of its definition, as this process listed it.
    pub tools: HashMap<String, String>,
    /// The `tools/list` entries, as listed.
    pub listed: Vec<Value>,
}

#[derive(Debug)]
struct Slot {
    running: Option<Arc<Running>>,
    /// The session the process serves (per-session scope): when it ends, so does the process.
    session: Option<Weak<SessionState>>,
    started: Instant,
    last_used: Instant,
    backoff: Duration,
    not_before: Instant,
}

/// The processes of one gateway.
#[derive(Debug)]
pub struct Pool {
    spawn: Spawn,
    limits: PoolLimits,
    slots: Mutex<HashMap<Arc<str>, Slot>>,
    /// One start at a time (a natural bound on how fast processes are spawned).
    starting: tokio::sync::Mutex<()>,
    /// Processes started and crashed, for the log and the metrics.
    pub starts: std::sync::atomic::AtomicU64,
    pub exits: std::sync::atomic::AtomicU64,
    /// Calls refused because the process's definition of the tool differs from its pin.
    pub definitions_changed: std::sync::atomic::AtomicU64,
}

impl Pool {
    pub fn new(spawn: Spawn, limits: PoolLimits) -> Self {
        Self {
            spawn,
            limits,
            slots: Mutex::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
            starts: Default::default(),
            exits: Default::default(),
            definitions_changed: Default::default(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live processes.
    pub fn live(&self) -> usize {
        self.slots()
            .values()
            .filter(|s| s.running.as_ref().is_some_and(|r| r.upstream.is_alive()))
            .count()
    }

    /// Live processes of `caller`'s sessions (per-session scope).
    fn live_of(&self, caller: &Principal) -> usize {
        let prefix = format!("{}#", caller.binding());
        self.slots()
            .iter()
            .filter(|(key, slot)| {
                key.starts_with(&prefix)
                    && slot.running.as_ref().is_some_and(|r| r.upstream.is_alive())
            })
            .count()
    }

    /// The figures of several pools added up (`None` for none).
    pub fn total(pools: &[Arc<Pool>]) -> Option<crate::observability::gauges::GatewayFigures> {
        pools.iter().map(|p| p.figures()).reduce(|a, b| {
            crate::observability::gauges::GatewayFigures {
                live: a.live + b.live,
                starts: a.starts + b.starts,
                exits: a.exits + b.exits,
                definitions_changed: a.definitions_changed + b.definitions_changed,
            }
        })
    }

    /// The figures the metrics show.
    pub fn figures(&self) -> crate::observability::gauges::GatewayFigures {
        use std::sync::atomic::Ordering::Relaxed;
        crate::observability::gauges::GatewayFigures {
            live: self.live() as u64,
            starts: self.starts.load(Relaxed),
            exits: self.exits.load(Relaxed),
            definitions_changed: self.definitions_changed.load(Relaxed),
        }
    }

    /// Starts a process with no principal (the gateway's own look at what the upstream offers),
    /// and lists its tools.
    pub async fn probe(&self) -> Result<Running, RpcError> {
        start(&self.spawn).await
    }

    /// `caller`'s process, started if it has none (or its last one exited).
    pub async fn process_for(
        &self,
        caller: &Principal,
        session: Option<&Arc<SessionState>>,
    ) -> Result<Arc<Running>, RpcError> {
        let session = session.filter(|_| self.limits.per_session);
        let key: Arc<str> = match session {
            // The session's address names it while it lives; the slot keeps a weak reference
            // to tell a later session at the same address apart.
            Some(s) => format!("{}#{:x}", caller.binding(), Arc::as_ptr(s) as usize).into(),
            None => caller.binding().into(),
        };
        if let Some(s) = session {
            self.forget_stale(&key, s);
        }
        let now = Instant::now();
        if let Some(running) = self.current(&key, now)? {
            return Ok(running);
        }
        let _one = self.starting.lock().await;
        let now = Instant::now();
        if let Some(running) = self.current(&key, now)? {
            return Ok(running);
        }
        if self.live() >= self.limits.max_processes {
            return Err(RpcError::Upstream(
                "too many upstream processes are running; retry later",
            ));
        }
        if session.is_some() && self.live_of(caller) >= self.limits.max_per_key {
            return Err(RpcError::Upstream(
                "this key's sessions hold all the upstream processes it may have; end one",
            ));
        }
        self.starts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match start(&self.spawn).await {
            Ok(running) => {
                let running = Arc::new(running);
                let mut slots = self.slots();
                let slot = slots.entry(key).or_insert(Slot {
                    running: None,
                    session: session.map(Arc::downgrade),
                    started: now,
                    last_used: now,
                    backoff: FIRST_BACKOFF,
                    not_before: now,
                });
                slot.running = Some(running.clone());
                slot.started = now;
                slot.last_used = now;
                tracing::info!(target: "upstream", principal = %caller, "upstream process started for a principal");
                Ok(running)
            }
            Err(e) => {
                self.failed(&key, now);
                Err(e)
            }
        }
    }

    /// The principal's running process, if it has a live one; an error while its restart
    /// waits out the backoff.
    fn current(&self, key: &Arc<str>, now: Instant) -> Result<Option<Arc<Running>>, RpcError> {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(key) else {
            return Ok(None);
        };
        match &slot.running {
            Some(r) if r.upstream.is_alive() => {
                slot.last_used = now;
                Ok(Some(r.clone()))
            }
            Some(_) => {
                // It exited since its last call: count it and back off.
                slot.running = None;
                self.exits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if now.saturating_duration_since(slot.started) >= STABLE_AFTER {
                    slot.backoff = FIRST_BACKOFF;
                }
                slot.not_before = now + slot.backoff;
                slot.backoff = (slot.backoff * 2).min(MAX_BACKOFF);
                Ok(None)
            }
            None if now < slot.not_before => Err(RpcError::Upstream(
                "the upstream server is restarting; retry shortly",
            )),
            None => Ok(None),
        }
    }

    fn failed(&self, key: &Arc<str>, now: Instant) {
        let mut slots = self.slots();
        let slot = slots.entry(key.clone()).or_insert(Slot {
            running: None,
            session: None,
            started: now,
            last_used: now,
            backoff: FIRST_BACKOFF,
            not_before: now,
        });
        slot.not_before = now + slot.backoff;
        slot.backoff = (slot.backoff * 2).min(MAX_BACKOFF);
    }

    /// Drops the slot under `key` if it belonged to another session than `session`.
    fn forget_stale(&self, key: &Arc<str>, session: &Arc<SessionState>) {
        let mut slots = self.slots();
        let stale = slots.get(key).is_some_and(|slot| {
            slot.session
                .as_ref()
                .is_some_and(|weak| weak.upgrade().is_none_or(|s| !Arc::ptr_eq(&s, session)))
        });
        if stale
            && let Some(Slot {
                running: Some(running),
                ..
            }) = slots.remove(key)
        {
            running.upstream.stop();
        }
    }

    /// Stops processes unused for the idle time, and those whose session ended (and forgets
    /// principals with none).
    pub fn sweep(&self, now: Instant) {
        let idle = self.limits.idle;
        self.slots().retain(|_, slot| {
            let ended = slot
                .session
                .as_ref()
                .is_some_and(|s| s.upgrade().is_none_or(|s| s.closed().is_cancelled()));
            let unused = ended || now.saturating_duration_since(slot.last_used) >= idle;
            if unused && let Some(running) = slot.running.take() {
                running.upstream.stop();
            }
            !unused || now < slot.not_before
        });
    }

    /// Stops every process (shutdown).
    pub fn stop_all(&self) {
        for (_, slot) in self.slots().drain() {
            if let Some(running) = slot.running {
                running.upstream.stop();
            }
        }
    }
}

/// Starts a process and lists its tools (every page).
async fn start(spawn: &Spawn) -> Result<Running, RpcError> {
    let upstream = Upstream::start(spawn).await.map_err(|e| {
        tracing::warn!(target: "upstream", error = %e, "the upstream server did not start");
        RpcError::Upstream("the upstream server could not be started")
    })?;
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let page = upstream
            .request("tools/list", params, None)
            .await
            .map_err(|_| RpcError::Upstream("the upstream server did not list its tools"))?;
        if let Some(tools) = page["tools"].as_array() {
            listed.extend(tools.iter().filter(|t| t["name"].is_string()).cloned());
        }
        cursor = page["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let tools = listed
        .iter()
        .filter_map(|t| Some((t["name"].as_str()?.to_owned(), digest(t))))
        .collect();
    Ok(Running {
        upstream,
        tools,
        listed,
    })
}
