//! Who may see and act on a task, here or anywhere in a fleet: `tasks/get`, `tasks/update`
//! and `tasks/cancel` for a caller (its binding must own the task and its rules allow the
//! tool), and the fleet's side of the store (snapshots for the shared records, what another
//! instance forwards). A task runs where it began; a request for a task this instance does
//! not run is answered from the shared record (get) or passed on to the instance that runs it
//! (cancel, update).

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::shared::{Asker, Forwarded, SharedTask, Snapshot, TaskMirror};
use super::store::TaskStore;
use crate::security::key_policy::KeyRules;
use crate::security::principal::Principal;

impl TaskStore {
    /// `tasks/get` on this instance: the detailed task, if `caller` owns a live task `id`.
    pub fn get(
        &self,
        id: &str,
        caller: &Principal,
        rules: &KeyRules,
    ) -> Option<Map<String, Value>> {
        self.get_as(id, Asker::of(caller, rules))
    }

    /// `tasks/update` on this instance: answers to open questions; keys not open are ignored.
    /// `None`: no such task for this caller.
    pub fn update(
        &self,
        id: &str,
        caller: &Principal,
        rules: &KeyRules,
        responses: &Map<String, Value>,
    ) -> Option<()> {
        self.update_as(id, Asker::of(caller, rules), responses)
    }

    /// `tasks/cancel` on this instance: stops an unfinished task; a finished one is left as it
    /// is. `None`: no such task for this caller.
    pub fn cancel(&self, id: &str, caller: &Principal, rules: &KeyRules) -> Option<()> {
        self.cancel_as(id, Asker::of(caller, rules))
    }

    /// Shares this store's tasks through `mirror` (once; later calls are ignored).
    pub fn set_mirror(&self, mirror: Arc<dyn TaskMirror>) {
        let _ = self.mirror.set(mirror);
    }

    /// The state of published task `id`, for the mirror.
    pub fn snapshot(&self, id: &str) -> Option<Snapshot> {
        let inner = self.lock();
        let (key, record) = inner.tasks.get_key_value(id)?;
        if !record.published {
            return None;
        }
        Some(Snapshot {
            owner: record.owner.clone(),
            tool: record.tool.clone(),
            detail: record.detail(key, &self.limits),
            terminal: record.status.is_terminal(),
            remaining: record.expires.saturating_duration_since(Instant::now()),
        })
    }

    /// Whether some task here is unfinished (what a fleet's instance must listen for).
    pub fn has_unfinished(&self) -> bool {
        self.lock()
            .tasks
            .values()
            .any(|r| r.published && !r.status.is_terminal())
    }

    /// Applies what another instance forwarded for task `id`, owned by `owner`.
    pub fn apply(&self, id: &str, owner: &str, what: Forwarded) {
        let asker = Asker {
            binding: owner,
            rules: None,
        };
        match what {
            Forwarded::Cancel => self.cancel_as(id, asker),
            Forwarded::Update(responses) => self.update_as(id, asker, &responses),
        };
    }

    /// Writes a new task's record to the mirror, if there is one.
    pub(super) async fn publish_shared(&self, id: &Arc<str>) {
        if let Some(mirror) = self.mirror.get() {
            mirror.publish(id).await;
        }
    }

    /// The shared record of a task this instance does not hold, under the caller's rules.
    async fn fetch_shared(
        &self,
        id: &str,
        caller: &Principal,
        rules: &KeyRules,
    ) -> Option<SharedTask> {
        let shared = self.mirror.get()?.fetch(id, caller.binding()).await?;
        rules.allows_tool(&shared.tool).then_some(shared)
    }

    /// `tasks/get`, wherever the task runs.
    pub async fn get_anywhere(
        &self,
        id: &str,
        caller: &Principal,
        rules: &KeyRules,
    ) -> Option<Map<String, Value>> {
        match self.get(id, caller, rules) {
            Some(detail) => Some(detail),
            None => Some(self.fetch_shared(id, caller, rules).await?.detail),
        }
    }

    /// `tasks/cancel` or `tasks/update`, wherever the task runs: applied here, or passed to the
    /// instance that runs it (an ended task needs nothing passed on). `None`: no such task for
    /// this caller.
    pub async fn act_anywhere(
        &self,
        id: &str,
        caller: &Principal,
        rules: &KeyRules,
        what: Forwarded,
    ) -> Option<()> {
        let here = match &what {
            Forwarded::Cancel => self.cancel(id, caller, rules),
            Forwarded::Update(responses) => self.update(id, caller, rules, responses),
        };
        if here.is_some() {
            return here;
        }
        let shared = self.fetch_shared(id, caller, rules).await?;
        if !shared.terminal
            && let Some(mirror) = self.mirror.get()
        {
            mirror.forward(id, caller.binding(), what).await;
        }
        Some(())
    }
}
