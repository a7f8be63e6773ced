//! The 2026-07-28 tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663): a `tools/call`
//! that takes long becomes a task the client polls (`tasks/get`), answers questions on
//! (`tasks/update`) and cancels (`tasks/cancel`).
//!
//! Decisions:
//! - Only 2026-07-28 requests that declare the extension in their own `_meta` client
//!   capabilities get tasks; a 2025-era request (and a legacy `params.task`, which is ignored)
//!   always runs the tool synchronously.
//! - The server decides which calls become tasks, per tool ([`TaskSupport`], from the
//!   [`Tool`](crate::tools::registry::Tool) trait): `Forbidden` tools always answer at once;
//!   `Optional` tools answer at once when they finish within a short grace period
//!   ([`TaskLimits::grace`]) and become tasks otherwise; `Required` tools always answer with a
//!   task (and refuse a 2026 caller without the extension with `-32021`). A tool that asks the
//!   client for input during the grace period becomes a task at once; one that returns a
//!   2026 input-required result within it answers synchronously (MRTR before the task exists).
//! - A task belongs to the principal's binding (a key's id and digest tag, or a token's
//!   issuer and subject): any other caller, a key replaced under the same id included, gets the
//!   same `-32602` as for an id that never existed. Ids are 144 bits from the OS CSPRNG.
//! - Bounds: per principal at most [`TaskLimits::max_running`] unfinished tasks (more are
//!   refused with an `isError` result), [`TaskLimits::max_kept`] records and
//!   [`TaskLimits::max_result_bytes`] of results kept (the oldest finished tasks make room; a
//!   result larger than the whole allowance fails its task); [`TaskLimits::max_tasks`] records
//!   in all; [`MAX_PENDING_INPUTS`] open questions per task. A task and its result vanish at
//!   `createdAt + ttlMs`, finished or not: unfinished work is stopped then.
//! - Cancelling drops the tool's future and fires its cancellation token
//!   ([`ToolContext::is_cancelled`](crate::mcp::context::ToolContext::is_cancelled)), which
//!   blocking work checks (the file search stops walking).
//! - Every task event (created, input requested, completed, failed, cancelled, expired) goes
//!   to the audit with the principal, the tool and the task id.
//! - A task runs in the process that created it. In a fleet (`--redis-url`) its record (with
//!   its result) is also kept in Redis ([`crate::fleet::tasks`]), so any instance answers
//!   `tasks/get` and passes `tasks/cancel` and `tasks/update` on to the running one;
//!   `notifications/tasks` come only from the instance that runs the task.

mod access;
pub mod methods;
mod record;
mod run;
mod shared;
mod store;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

use crate::error::RpcError;

pub use record::{TaskAudit, TaskEvent, TaskLimits};
pub use run::{Launched, TaskHandle, launch};
pub use shared::{Forwarded, SharedTask, Snapshot, TaskMirror};
pub use store::TaskStore;

/// The extension's identifier, in `server/discover` and in client capabilities.
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// Questions one task may have open at once.
pub const MAX_PENDING_INPUTS: usize = 16;

/// Whether a tool may, must or must not run as a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSupport {
    /// Always answered at once.
    #[default]
    Forbidden,
    /// A task when the client offers tasks and the call outlasts the grace period.
    Optional,
    /// Always a task; a 2026-07-28 client without the extension is refused (`-32021`).
    Required,
}

/// Whether client capabilities declare the tasks extension.
pub fn declared(capabilities: &Map<String, Value>) -> bool {
    capabilities
        .get("extensions")
        .and_then(Value::as_object)
        .and_then(|e| e.get(TASKS_EXTENSION))
        .is_some_and(Value::is_object)
}

/// `-32021` naming the tasks extension as the capability the request lacks.
pub fn missing_extension() -> RpcError {
    RpcError::MissingCapability(json!({ "extensions": { TASKS_EXTENSION: {} } }))
}
