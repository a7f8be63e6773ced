//! Running a tool call that may become a task: the tool runs in a tokio task of its own from
//! the start; the request waits up to the grace period for it, then answers at once or with a
//! `CreateTaskResult` (the record is published before that answer leaves, so a `tasks/get`
//! right after it finds the task).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::TaskSupport;
use super::store::{Refused, Settled, TaskStore};
use crate::error::ToolError;
use crate::security::principal::Principal;
use crate::tools::output::{ToolFuture, ToolOutput};

/// A running task, as its tool sees it: where its questions to the client go.
#[derive(Clone)]
pub struct TaskHandle {
    store: Arc<TaskStore>,
    id: Arc<str>,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle").finish_non_exhaustive()
    }
}

impl TaskHandle {
    /// Asks the client (the task turns `input_required` until `tasks/update` answers) and
    /// waits for the answer, as long as the task lives.
    pub async fn ask(&self, method: &str, params: Value) -> Result<Value, ToolError> {
        let answered = self
            .store
            .ask(&self.id, json!({ "method": method, "params": params }))?;
        answered
            .await
            .map_err(|_| ToolError::Failed("the task ended before the client answered"))
    }

    /// The task's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl From<Refused> for ToolError {
    fn from(refused: Refused) -> Self {
        ToolError::Failed(match refused {
            Refused::Running => {
                "too many tasks of this caller are unfinished; wait for one or cancel one"
            }
            Refused::Full => "the server holds too many tasks; retry later",
            Refused::Random => "the server cannot create a task now",
        })
    }
}

/// How a call that could become a task was answered.
#[derive(Debug)]
pub enum Launched {
    /// At once, as any call (it finished within the grace period, or could not start).
    Now(Result<ToolOutput, ToolError>),
    /// As a task: the `CreateTaskResult`.
    Task(Value),
}

/// Forgets an unpublished record if the request goes away during the grace period.
struct Unsettled<'a> {
    store: &'a TaskStore,
    id: Option<Arc<str>>,
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.store.discard_unpublished(&id);
        }
    }
}

/// Starts a call of `tool` by `caller` that may become a task: `start` makes the tool's future
/// from the task's handle and cancellation token.
pub async fn launch(
    store: &Arc<TaskStore>,
    support: TaskSupport,
    caller: &Principal,
    tool: &str,
    start: impl FnOnce(TaskHandle, CancellationToken) -> ToolFuture,
) -> Launched {
    let (id, token, wake) = match store.prepare(caller, tool) {
        Ok(prepared) => prepared,
        Err(refused) => return Launched::Now(Err(refused.into())),
    };
    let handle = TaskHandle {
        store: store.clone(),
        id: id.clone(),
    };
    let future = start(handle, token.clone());
    let worker = (store.clone(), id.clone(), token);
    tokio::spawn(async move {
        let (store, id, token) = worker;
        let outcome = tokio::select! {
            biased;
            () = token.cancelled() => return,
            outcome = AssertUnwindSafe(future).catch_unwind() => {
                outcome.unwrap_or(Err(ToolError::Internal))
            }
        };
        store.finish(&id, outcome);
    });
    let mut guard = Unsettled {
        store,
        id: Some(id.clone()),
    };
    // A zero grace period makes every call offered a task one (tests, operators who want it).
    let grace = store.limits().grace;
    let must_be_task = support == TaskSupport::Required || grace.is_zero();
    let grace = tokio::time::sleep(grace);
    tokio::pin!(grace);
    while !store.has_news(&id) {
        tokio::select! {
            () = wake.notified() => {}
            () = &mut grace => break,
        }
    }
    guard.id = None;
    match store.settle(&id, must_be_task) {
        Some(Settled::Now(outcome)) => Launched::Now(outcome),
        Some(Settled::Task(created)) => {
            // Durable before it is answered: in a fleet, any instance finds it from now on.
            store.publish_shared(&id).await;
            Launched::Task(created)
        }
        None => Launched::Now(Err(ToolError::Failed("the task ended before it started"))),
    }
}
