//! A task record: its status and what the status carries, the bounds on records, the events
//! the audit hears, and the JSON a record is shown as (`CreateTaskResult`, `DetailedTask`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::ToolError;
use crate::observability::audit::event::rfc3339;
use crate::tools::output::{ToolOutput, result};

/// The bounds on tasks (flags `--task-ttl-secs`, `--max-tasks-per-key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskLimits {
    /// How long a task and its result live, from creation (`ttlMs`).
    pub ttl: Duration,
    /// The polling interval suggested to clients (`pollIntervalMs`).
    pub poll_interval: Duration,
    /// Unfinished tasks per principal.
    pub max_running: usize,
    /// Task records (finished or not) kept per principal.
    pub max_kept: usize,
    /// Bytes of results kept per principal.
    pub max_result_bytes: usize,
    /// Task records in all.
    pub max_tasks: usize,
    /// Bytes of results kept in all.
    pub max_total_result_bytes: usize,
    /// How long an `Optional` tool may take and still answer at once (zero: it never does
    /// when the client offers tasks).
    pub grace: Duration,
}

impl Default for TaskLimits {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            max_running: 16,
            max_kept: 256,
            max_result_bytes: 8 * 1024 * 1024,
            max_tasks: 10_000,
            max_total_result_bytes: 256 * 1024 * 1024,
            grace: Duration::from_millis(100),
        }
    }
}

/// What happened to a task, for the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEvent {
    /// `created`, `input_requested`, `completed`, `failed`, `cancelled` or `expired`.
    pub event: &'static str,
    pub task_id: Arc<str>,
    /// The principal's name (a key id, or `issuer|subject`).
    pub principal: Arc<str>,
    pub tool: Arc<str>,
}

/// Where task events go.
pub type TaskAudit = Arc<dyn Fn(&TaskEvent) + Send + Sync>;

/// A task's status and what it carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    Working,
    InputRequired,
    Completed(Value),
    Failed(Value),
    Cancelled,
}

impl Status {
    fn name(&self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::InputRequired => "input_required",
            Self::Completed(_) => "completed",
            Self::Failed(_) => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub(super) fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed(_) | Self::Failed(_) | Self::Cancelled)
    }
}

/// An open question to the client and where its answer goes.
pub(super) struct Pending {
    pub(super) request: Value,
    pub(super) answer: oneshot::Sender<Value>,
}

pub(super) struct Record {
    pub(super) owner: Arc<str>,
    pub(super) principal: Arc<str>,
    pub(super) tool: Arc<str>,
    /// Whether the client has been told about the task (before: the grace period).
    pub(super) published: bool,
    pub(super) status: Status,
    pub(super) status_message: Option<&'static str>,
    pub(super) created: SystemTime,
    pub(super) updated: SystemTime,
    pub(super) expires: Instant,
    pub(super) inputs: BTreeMap<String, Pending>,
    pub(super) next_key: u64,
    pub(super) result_bytes: usize,
    /// The tool's outcome when it came before the task was published.
    pub(super) early: Option<Result<ToolOutput, ToolError>>,
    pub(super) cancel: CancellationToken,
    pub(super) wake: Arc<Notify>,
    pub(super) order: u64,
}

/// The JSON-RPC error object of a task that failed inside the server.
pub(super) fn internal_error() -> Value {
    json!({ "code": crate::error::code::INTERNAL_ERROR, "message": "Internal error" })
}

impl Record {
    /// The fields of a task every answer about it carries.
    pub(super) fn fields(&self, id: &Arc<str>, limits: &TaskLimits) -> Map<String, Value> {
        let mut task = Map::new();
        task.insert("taskId".into(), json!(id.as_ref()));
        task.insert("status".into(), json!(self.status.name()));
        task.insert("createdAt".into(), json!(rfc3339(self.created).as_str()));
        task.insert(
            "lastUpdatedAt".into(),
            json!(rfc3339(self.updated).as_str()),
        );
        task.insert("ttlMs".into(), json!(limits.ttl.as_millis() as u64));
        task.insert(
            "pollIntervalMs".into(),
            json!(limits.poll_interval.as_millis() as u64),
        );
        if let Some(message) = self.status_message {
            task.insert("statusMessage".into(), json!(message));
        }
        task
    }

    /// The `DetailedTask`: the task's fields and what its status carries.
    pub(super) fn detail(&self, id: &Arc<str>, limits: &TaskLimits) -> Map<String, Value> {
        let mut task = self.fields(id, limits);
        match &self.status {
            Status::InputRequired => {
                let requests: Map<String, Value> = self
                    .inputs
                    .iter()
                    .map(|(k, p)| (k.clone(), p.request.clone()))
                    .collect();
                task.insert("inputRequests".into(), Value::Object(requests));
            }
            Status::Completed(r) => {
                task.insert("result".into(), r.clone());
            }
            Status::Failed(e) => {
                task.insert("error".into(), e.clone());
            }
            Status::Working | Status::Cancelled => {}
        }
        task
    }
}

/// The status a tool's outcome gives its task: a tool error is a completed task whose result
/// says `isError`; only an internal failure fails the task.
pub(super) fn status_of(outcome: Result<ToolOutput, ToolError>) -> Status {
    match outcome {
        Err(ToolError::Internal) => Status::Failed(internal_error()),
        Ok(output) if output.input_required.is_some() => Status::Failed(internal_error()),
        other => Status::Completed(result(other)),
    }
}
