//! What flows to a client besides a result: notifications on a request's own response stream
//! (progress, log messages, and in the 2025 era server-to-client requests), and server-wide
//! changes (list changes, resource updates) for GET streams and `subscriptions/listen`.
//!
//! Decisions:
//! - A request's stream is a bounded channel ([`STREAM_BUFFER`] messages). A tool that outpaces
//!   its client waits; it never grows memory without bound.
//! - Changes go through one `broadcast` channel; a listener that falls behind by more than
//!   [`CHANGE_BUFFER`] changes misses the oldest (list changes are idempotent hints).
//! - Log messages are sent only at or above the level the client asked for, and never when it
//!   asked for none (2026-07-28: `_meta` `logLevel`; 2025: `logging/setLevel`).

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

/// Messages one response stream can buffer.
pub const STREAM_BUFFER: usize = 64;
/// Changes a slow listener may lag behind.
pub const CHANGE_BUFFER: usize = 256;

/// RFC 5424 levels, as MCP names them, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => Self::Debug,
            "info" => Self::Info,
            "notice" => Self::Notice,
            "warning" => Self::Warning,
            "error" => Self::Error,
            "critical" => Self::Critical,
            "alert" => Self::Alert,
            "emergency" => Self::Emergency,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
            Self::Alert => "alert",
            Self::Emergency => "emergency",
        }
    }
}

/// The sending half of one request's response stream.
pub type EventSink = mpsc::Sender<Value>;

/// A new response stream.
pub fn stream() -> (EventSink, mpsc::Receiver<Value>) {
    mpsc::channel(STREAM_BUFFER)
}

/// A JSON-RPC notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

/// A server-wide change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    ToolsListChanged,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated(String),
    /// A task changed (2026-07-28 tasks extension): heard only by its owner's listeners.
    Task(std::sync::Arc<TaskChange>),
}

/// A task's new state, for `notifications/tasks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskChange {
    /// The owner's binding ([`crate::security::principal::Principal::binding`]).
    pub owner: std::sync::Arc<str>,
    pub task_id: std::sync::Arc<str>,
    /// The `DetailedTask`, as `tasks/get` gives it.
    pub detail: serde_json::Map<String, Value>,
}

impl Change {
    /// The notification announcing this change.
    pub fn notification(&self) -> Value {
        match self {
            Self::ToolsListChanged => notification("notifications/tools/list_changed", json!({})),
            Self::PromptsListChanged => {
                notification("notifications/prompts/list_changed", json!({}))
            }
            Self::ResourcesListChanged => {
                notification("notifications/resources/list_changed", json!({}))
            }
            Self::ResourceUpdated(uri) => {
                notification("notifications/resources/updated", json!({ "uri": uri }))
            }
            Self::Task(change) => {
                notification("notifications/tasks", Value::Object(change.detail.clone()))
            }
        }
    }
}

/// Where changes are announced.
#[derive(Debug, Clone)]
pub struct ChangeHub {
    sender: broadcast::Sender<Change>,
}

impl Default for ChangeHub {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeHub {
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(CHANGE_BUFFER).0,
        }
    }

    /// Announces a change to every listener (none listening is fine).
    pub fn announce(&self, change: Change) {
        let _ = self.sender.send(change);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_by_severity_and_round_trip() {
        assert!(LogLevel::Debug < LogLevel::Info && LogLevel::Error < LogLevel::Emergency);
        for l in [
            "debug",
            "info",
            "notice",
            "warning",
            "error",
            "critical",
            "alert",
            "emergency",
        ] {
            assert_eq!(LogLevel::parse(l).map(LogLevel::as_str), Some(l));
        }
        assert_eq!(LogLevel::parse("INFO"), None);
    }

    #[tokio::test]
    async fn changes_reach_every_listener() {
        let hub = ChangeHub::new();
        let mut a = hub.subscribe();
        let mut b = hub.subscribe();
        hub.announce(Change::ResourceUpdated("test://x".into()));
        assert_eq!(
            a.recv().await.ok(),
            Some(Change::ResourceUpdated("test://x".into()))
        );
        assert_eq!(
            b.recv().await.ok(),
            Some(Change::ResourceUpdated("test://x".into()))
        );
        assert_eq!(
            Change::ToolsListChanged.notification()["method"],
            "notifications/tools/list_changed"
        );
    }
}
