//! The task records of this process: who owns each, its status and result, its open
//! questions, and the bounds per principal and in all (see the module doc of
//! [`crate::mcp::tasks`]). One mutex guards the records; nothing awaits while holding it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::ToolError;
use crate::keys::random_token;
use crate::mcp::events::{Change, ChangeHub, TaskChange};
use crate::security::principal::Principal;
use crate::tools::output::ToolOutput;

use super::MAX_PENDING_INPUTS;
use super::record::{
    Pending, Record, Status, TaskAudit, TaskEvent, TaskLimits, internal_error, status_of,
};
use super::shared::{Asker, TaskMirror};

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    running: usize,
    kept: usize,
    bytes: usize,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) tasks: HashMap<Arc<str>, Record>,
    usage: HashMap<Arc<str>, Usage>,
    /// Result bytes kept in all.
    result_bytes: usize,
    order: u64,
}

/// Why a call could not become a task (the tool error each gives is in `run.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The caller has [`TaskLimits::max_running`] unfinished tasks.
    Running,
    /// The server holds [`TaskLimits::max_tasks`] records.
    Full,
    /// No id could be drawn.
    Random,
}

/// How a call that might have become a task settled after the grace period.
pub(super) enum Settled {
    /// Answered at once (the record is gone).
    Now(Result<ToolOutput, ToolError>),
    /// The `CreateTaskResult`.
    Task(Value),
}

/// The tasks of this process.
pub struct TaskStore {
    inner: Mutex<Inner>,
    pub(super) limits: TaskLimits,
    changes: ChangeHub,
    audit: Option<TaskAudit>,
    /// A fleet's shared records (`--redis-url`), told of every change.
    pub(super) mirror: OnceLock<Arc<dyn TaskMirror>>,
}

impl std::fmt::Debug for TaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskStore")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl TaskStore {
    /// A store announcing task changes on `changes` and reporting events to `audit`.
    pub fn new(limits: TaskLimits, changes: ChangeHub, audit: Option<TaskAudit>) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            limits,
            changes,
            audit,
            mirror: OnceLock::new(),
        }
    }

    pub fn limits(&self) -> TaskLimits {
        self.limits
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Task records held, for the metrics.
    pub fn len(&self) -> usize {
        self.lock().tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn report(&self, event: &'static str, id: &Arc<str>, record: &Record) {
        if let Some(audit) = &self.audit {
            audit(&TaskEvent {
                event,
                task_id: id.clone(),
                principal: record.principal.clone(),
                tool: record.tool.clone(),
            });
        }
    }

    /// Tells the fleet's mirror (if any) that the record `id` changed or went.
    fn mirror_changed(&self, id: &Arc<str>) {
        if let Some(mirror) = self.mirror.get() {
            mirror.changed(id);
        }
    }

    fn announce(&self, id: &Arc<str>, record: &Record) {
        self.mirror_changed(id);
        self.changes.announce(Change::Task(Arc::new(TaskChange {
            owner: record.owner.clone(),
            task_id: id.clone(),
            detail: record.detail(id, &self.limits),
        })));
    }

    /// A new, unpublished record for a call of `tool` by `caller`: its id, cancellation token
    /// and wake-up.
    pub(super) fn prepare(
        &self,
        caller: &Principal,
        tool: &str,
    ) -> Result<(Arc<str>, CancellationToken, Arc<Notify>), Refused> {
        let id: Arc<str> = random_token(18).map_err(|_| Refused::Random)?.into();
        let owner: Arc<str> = caller.binding().into();
        let now = Instant::now();
        let mut inner = self.lock();
        self.sweep_locked(&mut inner, now);
        let usage = inner.usage.get(&owner).copied().unwrap_or_default();
        if usage.running >= self.limits.max_running {
            return Err(Refused::Running);
        }
        if usage.kept >= self.limits.max_kept {
            self.evict_oldest_finished(&mut inner, &owner);
        }
        if inner.tasks.len() >= self.limits.max_tasks {
            return Err(Refused::Full);
        }
        let token = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        inner.order += 1;
        let order = inner.order;
        let wall = SystemTime::now();
        inner.tasks.insert(
            id.clone(),
            Record {
                owner: owner.clone(),
                principal: caller.name().into(),
                tool: tool.into(),
                published: false,
                status: Status::Working,
                status_message: None,
                created: wall,
                updated: wall,
                expires: now + self.limits.ttl,
                inputs: BTreeMap::new(),
                next_key: 0,
                result_bytes: 0,
                early: None,
                cancel: token.clone(),
                wake: wake.clone(),
                order,
            },
        );
        let usage = inner.usage.entry(owner).or_default();
        usage.running += 1;
        usage.kept += 1;
        Ok((id, token, wake))
    }

    /// The tool finished (or panicked: `Err(ToolError::Internal)`).
    pub(super) fn finish(&self, id: &Arc<str>, outcome: Result<ToolOutput, ToolError>) {
        let mut inner = self.lock();
        let Some(record) = inner.tasks.get_mut(id) else {
            return;
        };
        if !record.published {
            record.early = Some(outcome);
            record.wake.notify_one();
            return;
        }
        if record.status.is_terminal() {
            return;
        }
        let status = status_of(outcome);
        self.end_locked(&mut inner, id, status);
    }

    /// Makes a running record terminal: usage, result bytes, audit, announcement.
    fn end_locked(&self, inner: &mut Inner, id: &Arc<str>, mut status: Status) {
        let Some(record) = inner.tasks.get(id) else {
            return;
        };
        let owner = record.owner.clone();
        let bytes = match &status {
            Status::Completed(r) => serde_json::to_vec(r).map_or(0, |v| v.len()),
            _ => 0,
        };
        let mut message = None;
        if bytes > self.limits.max_result_bytes {
            status = Status::Failed(internal_error());
            message = Some("the result is larger than the server keeps for a task");
        } else {
            let used = inner.usage.get(&owner).map_or(0, |u| u.bytes);
            if used + bytes > self.limits.max_result_bytes {
                self.make_room(inner, &owner, bytes);
            }
            if inner.result_bytes + bytes > self.limits.max_total_result_bytes {
                status = Status::Failed(internal_error());
                message = Some("the server holds too many task results now; retry later");
            }
        }
        let kept = if matches!(status, Status::Failed(_)) {
            0
        } else {
            bytes
        };
        if let Some(usage) = inner.usage.get_mut(&owner) {
            usage.running = usage.running.saturating_sub(1);
            usage.bytes += kept;
        }
        inner.result_bytes += kept;
        let Some(record) = inner.tasks.get_mut(id) else {
            return;
        };
        if matches!(status, Status::Failed(_)) && message.is_none() {
            message = Some("the tool failed with an internal error");
        }
        if matches!(status, Status::Cancelled) {
            message = Some("cancelled by the client");
        }
        let event = match &status {
            Status::Completed(_) => "completed",
            Status::Failed(_) => "failed",
            _ => "cancelled",
        };
        record.status = status;
        record.status_message = message;
        record.result_bytes = kept;
        record.updated = SystemTime::now();
        record.inputs.clear();
        record.cancel.cancel();
        let record = &inner.tasks[id];
        self.report(event, id, record);
        self.announce(id, record);
    }

    /// Removes the owner's oldest finished records until `bytes` more fit its allowance.
    fn make_room(&self, inner: &mut Inner, owner: &Arc<str>, bytes: usize) {
        while inner
            .usage
            .get(owner)
            .is_some_and(|u| u.bytes + bytes > self.limits.max_result_bytes)
        {
            if !self.evict_oldest_finished(inner, owner) {
                break;
            }
        }
    }

    /// Removes the owner's oldest finished record; false if it has none.
    fn evict_oldest_finished(&self, inner: &mut Inner, owner: &Arc<str>) -> bool {
        let oldest = inner
            .tasks
            .iter()
            .filter(|(_, r)| &r.owner == owner && r.status.is_terminal())
            .min_by_key(|(_, r)| r.order)
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => {
                self.remove_locked(inner, &id);
                true
            }
            None => false,
        }
    }

    /// Removes a record and gives back what it held; stops its work.
    fn remove_locked(&self, inner: &mut Inner, id: &Arc<str>) -> Option<Record> {
        let record = inner.tasks.remove(id)?;
        record.cancel.cancel();
        if record.published {
            self.mirror_changed(id);
        }
        if let Some(usage) = inner.usage.get_mut(&record.owner) {
            if !record.status.is_terminal() {
                usage.running = usage.running.saturating_sub(1);
            }
            usage.kept = usage.kept.saturating_sub(1);
            usage.bytes = usage.bytes.saturating_sub(record.result_bytes);
            inner.result_bytes = inner.result_bytes.saturating_sub(record.result_bytes);
            if usage.kept == 0 {
                inner.usage.remove(&record.owner);
            }
        }
        Some(record)
    }

    /// Removes every record past its time; unfinished work is stopped.
    pub fn sweep(&self, now: Instant) {
        let mut inner = self.lock();
        self.sweep_locked(&mut inner, now);
    }

    /// Sweeps expired tasks in the background, every second.
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        crate::upkeep::every(self, Duration::from_secs(1), |store| {
            store.sweep(Instant::now());
        })
    }

    fn sweep_locked(&self, inner: &mut Inner, now: Instant) {
        let expired: Vec<Arc<str>> = inner
            .tasks
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(record) = self.remove_locked(inner, &id)
                && record.published
            {
                self.report("expired", &id, &record);
            }
        }
    }

    /// After the grace period (or an early wake-up): answer at once, or publish the task.
    pub(super) fn settle(&self, id: &Arc<str>, must_be_task: bool) -> Option<Settled> {
        let mut inner = self.lock();
        let record = inner.tasks.get_mut(id)?;
        if let Some(outcome) = record.early.take() {
            let asks = matches!(&outcome, Ok(o) if o.input_required.is_some());
            if asks || !must_be_task {
                self.remove_locked(&mut inner, id);
                return Some(Settled::Now(outcome));
            }
            record.published = true;
            self.report("created", id, &inner.tasks[id]);
            self.end_locked(&mut inner, id, status_of(outcome));
        } else {
            record.published = true;
            let record = &inner.tasks[id];
            self.report("created", id, record);
            if record.status == Status::InputRequired {
                self.report("input_requested", id, record);
            }
        }
        self.mirror_changed(id);
        let record = &inner.tasks[id];
        let mut created = record.fields(id, &self.limits);
        created.insert("resultType".into(), json!("task"));
        Some(Settled::Task(Value::Object(created)))
    }

    /// Whether the record has something for the grace period to stop for: an outcome, or a
    /// question for the client.
    pub(super) fn has_news(&self, id: &Arc<str>) -> bool {
        self.lock()
            .tasks
            .get(id)
            .is_none_or(|r| r.early.is_some() || r.status != Status::Working)
    }

    /// Forgets an unpublished record (the request went away during the grace period).
    pub(super) fn discard_unpublished(&self, id: &Arc<str>) {
        let mut inner = self.lock();
        if inner.tasks.get(id).is_some_and(|r| !r.published) {
            self.remove_locked(&mut inner, id);
        }
    }

    /// Opens a question to the client; its answer arrives through [`Self::update`].
    pub(super) fn ask(
        &self,
        id: &Arc<str>,
        request: Value,
    ) -> Result<oneshot::Receiver<Value>, ToolError> {
        let mut inner = self.lock();
        let record = inner
            .tasks
            .get_mut(id)
            .filter(|r| !r.status.is_terminal())
            .ok_or(ToolError::Failed("the task has ended"))?;
        if record.inputs.len() >= MAX_PENDING_INPUTS {
            return Err(ToolError::Failed(
                "too many questions to the client are open",
            ));
        }
        record.next_key += 1;
        let key = format!("input-{}", record.next_key);
        let (answer, answered) = oneshot::channel();
        record.inputs.insert(key, Pending { request, answer });
        record.status = Status::InputRequired;
        record.updated = SystemTime::now();
        record.wake.notify_one();
        let record = &inner.tasks[id];
        if record.published {
            self.report("input_requested", id, record);
            self.announce(id, record);
        }
        Ok(answered)
    }

    /// The record `id` if `asker` owns it, its rules (if any) still allow the tool (a reload
    /// may have narrowed them), and it is visible (published, not expired).
    fn visible<'a>(
        &self,
        inner: &'a mut Inner,
        id: &str,
        asker: Asker<'_>,
    ) -> Option<(Arc<str>, &'a mut Record)> {
        let now = Instant::now();
        let (key, record) = inner.tasks.get_key_value(id)?;
        if !record.published
            || record.owner.as_ref() != asker.binding
            || asker.rules.is_some_and(|r| !r.allows_tool(&record.tool))
        {
            return None;
        }
        let key = key.clone();
        if record.expires <= now {
            self.sweep_locked(inner, now);
            return None;
        }
        inner.tasks.get_mut(id).map(|r| (key, r))
    }

    /// The detailed task `id`, if `asker` may see it.
    pub(super) fn get_as(&self, id: &str, asker: Asker<'_>) -> Option<Map<String, Value>> {
        let mut inner = self.lock();
        let (key, record) = self.visible(&mut inner, id, asker)?;
        Some(record.detail(&key, &self.limits))
    }

    pub(super) fn update_as(
        &self,
        id: &str,
        asker: Asker<'_>,
        responses: &Map<String, Value>,
    ) -> Option<()> {
        let mut inner = self.lock();
        let (key, record) = self.visible(&mut inner, id, asker)?;
        let mut answered = false;
        for (name, response) in responses {
            if let Some(pending) = record.inputs.remove(name) {
                let _ = pending.answer.send(response.clone());
                answered = true;
            }
        }
        if answered {
            if record.inputs.is_empty() && record.status == Status::InputRequired {
                record.status = Status::Working;
            }
            record.updated = SystemTime::now();
            let record = &inner.tasks[&key];
            self.announce(&key, record);
        }
        Some(())
    }

    pub(super) fn cancel_as(&self, id: &str, asker: Asker<'_>) -> Option<()> {
        let mut inner = self.lock();
        let (key, record) = self.visible(&mut inner, id, asker)?;
        if !record.status.is_terminal() {
            self.end_locked(&mut inner, &key, Status::Cancelled);
        }
        Some(())
    }
}
