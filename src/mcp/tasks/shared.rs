//! What crosses between the task store and what reaches it from outside this process: who
//! asks about a task ([`Asker`]), and the seam to a fleet's shared records ([`TaskMirror`],
//! implemented over Redis by [`crate::fleet::tasks`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::mcp::resources::BoxFuture;
use crate::security::key_policy::KeyRules;
use crate::security::principal::Principal;

/// A task as a fleet's other instances see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedTask {
    pub tool: String,
    /// The `DetailedTask`.
    pub detail: Map<String, Value>,
    pub terminal: bool,
}

/// What one instance asks of the instance that runs a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Forwarded {
    Cancel,
    /// `tasks/update`'s `inputResponses`.
    Update(Map<String, Value>),
}

/// A published task's state, as the mirror writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The owner's binding.
    pub owner: Arc<str>,
    pub tool: Arc<str>,
    pub detail: Map<String, Value>,
    pub terminal: bool,
    /// Until the task expires.
    pub remaining: Duration,
}

/// Where a fleet keeps its task records.
pub trait TaskMirror: Send + Sync + 'static {
    /// The record `id` changed or went: write it soon (never blocks).
    fn changed(&self, id: &Arc<str>);
    /// Writes the record `id` now (a new task, before its creation is answered).
    fn publish<'a>(&'a self, id: &'a Arc<str>) -> BoxFuture<'a, ()>;
    /// The record of task `id` if the principal bound as `owner` owns it.
    fn fetch<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Option<SharedTask>>;
    /// Passes `what` to the instance that runs task `id` (owned by `owner`); false if it could
    /// not be passed on.
    fn forward<'a>(&'a self, id: &'a str, owner: &'a str, what: Forwarded) -> BoxFuture<'a, bool>;
}

/// Who asks about a task: the binding it must be owned by, and the caller's rules (`None`: a
/// request a fleet's other instance forwarded, whose rules that instance checked).
#[derive(Clone, Copy)]
pub(super) struct Asker<'a> {
    pub binding: &'a str,
    pub rules: Option<&'a KeyRules>,
}

impl<'a> Asker<'a> {
    pub(super) fn of(caller: &'a Principal, rules: &'a KeyRules) -> Self {
        Self {
            binding: caller.binding(),
            rules: Some(rules),
        }
    }
}
