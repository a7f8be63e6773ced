//! [`SharedTasks`]: a fleet's records of 2026-07-28 tasks in Redis, so that any instance
//! answers `tasks/get`, and a `tasks/cancel` or `tasks/update` sent to any instance reaches
//! the one that runs the task.
//!
//! - The record of task `id` is `smcp:task:<digest of the id>` → JSON: the owner binding's
//!   digest, the instance that runs it, the tool's name, whether it ended, and the
//!   `DetailedTask` (with its result: **a task's result is in Redis until the task's TTL**),
//!   with Redis's expiry at the task's own. The id itself and the owner's key never are.
//! - The running instance writes the record when the task is created (before answering) and
//!   after every change, through one writer that always writes the newest state, in order.
//! - Another instance reads the record (one round trip) and answers only the owner (its
//!   binding's digest must match; anyone else gets the same `-32602` as for an unknown id);
//!   a cancel or answers go to the running instance's inbox `smcp:task-inbox:<instance>`,
//!   which that instance reads every [`INBOX_EVERY`] while it has unfinished tasks (so an idle
//!   instance costs Redis nothing), checking the owner again before applying them.
//! - While Redis does not answer, each instance answers for the tasks it runs and no other.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use super::Fleet;
use crate::keys::random_token;
use crate::mcp::resources::BoxFuture;
use crate::mcp::tasks::{Forwarded, SharedTask, TaskMirror, TaskStore};

/// How often an instance with unfinished tasks reads its inbox.
pub const INBOX_EVERY: Duration = Duration::from_millis(250);
/// Messages taken from the inbox per read.
const INBOX_BATCH: usize = 64;
/// How long an inbox outlives its last message (an instance that went away leaves nothing).
const INBOX_TTL_MS: u64 = 60_000;

/// The fleet's task records, for one instance's store.
pub struct SharedTasks {
    fleet: Fleet,
    store: Weak<TaskStore>,
    /// This instance's name in records and inboxes (random per start).
    instance: String,
    dirty: Mutex<HashSet<Arc<str>>>,
    wake: Notify,
    /// Writes one at a time, so a record in Redis is never older than one written before it.
    writing: tokio::sync::Mutex<()>,
    /// Record digest → task id, for the tasks this instance runs (the inbox names digests).
    ids: Mutex<HashMap<String, Arc<str>>>,
}

impl std::fmt::Debug for SharedTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTasks").finish_non_exhaustive()
    }
}

impl SharedTasks {
    /// Shares `store`'s tasks through `fleet`, and starts the writer and the inbox reader
    /// (they end with the store). Needs a Tokio runtime.
    pub fn attach(fleet: &Fleet, store: &Arc<TaskStore>) -> Arc<Self> {
        let shared = Arc::new(Self {
            fleet: fleet.clone(),
            store: Arc::downgrade(store),
            instance: random_token(12).unwrap_or_else(|_| "instance".into()),
            dirty: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            writing: tokio::sync::Mutex::new(()),
            ids: Mutex::new(HashMap::new()),
        });
        store.set_mirror(shared.clone());
        tokio::spawn(writer(Arc::downgrade(&shared)));
        tokio::spawn(inbox(Arc::downgrade(&shared)));
        shared
    }

    fn digest(&self, id: &str) -> String {
        hex::encode(self.fleet.digest("task", 4, id.as_bytes()))
    }

    fn owner(&self, binding: &str) -> String {
        hex::encode(self.fleet.digest("owner", 3, binding.as_bytes()))
    }

    fn inbox_key(instance: &str) -> String {
        format!("smcp:task-inbox:{instance}")
    }

    /// Writes the newest state of `id` (or deletes its record if it went); false if Redis
    /// did not answer.
    async fn write(&self, id: &Arc<str>) -> bool {
        let Some(store) = self.store.upgrade() else {
            return true;
        };
        let _one_at_a_time = self.writing.lock().await;
        let digest = self.digest(id);
        let key = format!("smcp:task:{digest}");
        let Some(snapshot) = store.snapshot(id) else {
            self.ids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&digest);
            return self
                .fleet
                .link
                .run(|mut c| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await })
                .await
                .is_some();
        };
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest, id.clone());
        // The id is the record's key's preimage: never stored in clear.
        let mut detail = snapshot.detail;
        detail.remove("taskId");
        let record = json!({
            "owner": self.owner(&snapshot.owner),
            "instance": self.instance,
            "tool": snapshot.tool.as_ref(),
            "ended": snapshot.terminal,
            "task": detail,
        })
        .to_string();
        let ms = u64::try_from(snapshot.remaining.as_millis()).unwrap_or(u64::MAX);
        self.fleet.link.set_expiring(key, record, ms).await
    }

    /// The record of `id` if `binding` owns it; with the instance that runs it.
    async fn read(&self, id: &str, binding: &str) -> Option<(SharedTask, String)> {
        if !self.fleet.link.is_up() {
            return None;
        }
        let key = format!("smcp:task:{}", self.digest(id));
        let text: Option<String> = self
            .fleet
            .link
            .run(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await?;
        let record: Value = serde_json::from_str(&text?).ok()?;
        if record["owner"].as_str() != Some(self.owner(binding).as_str()) {
            return None;
        }
        let mut detail = record["task"].as_object()?.clone();
        detail.insert("taskId".into(), json!(id));
        let task = SharedTask {
            tool: record["tool"].as_str()?.to_owned(),
            detail,
            terminal: record["ended"].as_bool()?,
        };
        Some((task, record["instance"].as_str()?.to_owned()))
    }

    /// Applies what other instances sent this one.
    async fn read_inbox(&self, store: &TaskStore) {
        let key = Self::inbox_key(&self.instance);
        let messages: Option<Vec<String>> = self
            .fleet
            .link
            .run(|mut c| async move {
                redis::cmd("LPOP")
                    .arg(key)
                    .arg(INBOX_BATCH)
                    .query_async::<Option<Vec<String>>>(&mut c)
                    .await
            })
            .await
            .flatten();
        for message in messages.unwrap_or_default() {
            let Ok(message) = serde_json::from_str::<Value>(&message) else {
                continue;
            };
            let id = message["task"].as_str().and_then(|digest| {
                self.ids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(digest)
                    .cloned()
            });
            let Some(id) = id else { continue };
            let Some(snapshot) = store.snapshot(&id) else {
                continue;
            };
            // The sender checked the owner; so does the instance that acts.
            if message["owner"].as_str() != Some(self.owner(&snapshot.owner).as_str()) {
                continue;
            }
            let what = match (message["op"].as_str(), message["responses"].as_object()) {
                (Some("cancel"), _) => Forwarded::Cancel,
                (Some("update"), Some(responses)) => Forwarded::Update(responses.clone()),
                _ => continue,
            };
            store.apply(&id, &snapshot.owner, what);
        }
    }
}

impl TaskMirror for SharedTasks {
    fn changed(&self, id: &Arc<str>) {
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone());
        self.wake.notify_one();
    }

    fn publish<'a>(&'a self, id: &'a Arc<str>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.fleet.link.is_up() && !self.write(id).await {
                self.changed(id);
            }
        })
    }

    fn fetch<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Option<SharedTask>> {
        Box::pin(async move { self.read(id, owner).await.map(|(task, _)| task) })
    }

    fn forward<'a>(&'a self, id: &'a str, owner: &'a str, what: Forwarded) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let Some((_, instance)) = self.read(id, owner).await else {
                return false;
            };
            let mut message = Map::new();
            message.insert("task".into(), json!(self.digest(id)));
            message.insert("owner".into(), json!(self.owner(owner)));
            match what {
                Forwarded::Cancel => message.insert("op".into(), json!("cancel")),
                Forwarded::Update(responses) => {
                    message.insert("responses".into(), Value::Object(responses));
                    message.insert("op".into(), json!("update"))
                }
            };
            let (key, text) = (
                Self::inbox_key(&instance),
                Value::Object(message).to_string(),
            );
            self.fleet
                .link
                .run(|mut c| async move {
                    redis::pipe()
                        .rpush(&key, text)
                        .ignore()
                        .pexpire(&key, INBOX_TTL_MS as i64)
                        .ignore()
                        .query_async::<()>(&mut c)
                        .await
                })
                .await
                .is_some()
        })
    }
}

/// Writes what changed until the store goes; what Redis missed is written again once it
/// answers.
async fn writer(shared: Weak<SharedTasks>) {
    loop {
        let Some(me) = shared.upgrade() else { return };
        if me.fleet.link.is_up() {
            let changed: Vec<Arc<str>> = {
                let mut dirty = me.dirty.lock().unwrap_or_else(|e| e.into_inner());
                dirty.drain().collect()
            };
            for id in changed {
                if !me.write(&id).await {
                    me.changed(&id);
                }
            }
        }
        let wake = me.wake.notified();
        // A change wakes the writer; so does a second passing (Redis may be back).
        let _ = tokio::time::timeout(Duration::from_secs(1), wake).await;
    }
}

/// Reads the inbox while the store has unfinished tasks, until the store goes.
async fn inbox(shared: Weak<SharedTasks>) {
    let mut ticker = tokio::time::interval(INBOX_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(me) = shared.upgrade() else { return };
        let Some(store) = me.store.upgrade() else {
            return;
        };
        if store.has_unfinished() && me.fleet.link.is_up() {
            me.read_inbox(&store).await;
        }
    }
}
