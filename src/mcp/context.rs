//! The context of one MCP request that the layers above and the handlers below share, so
//! that tools, prompts, resources and the audit depend on it and not on each other: what the
//! message asked for ([`McpCall`], for the audit), and what a handler noted on the way
//! ([`CallNote`]: the sandbox path it touched, whether that was an escape attempt, whether a
//! tool failed); and what a handler is handed: who calls and how the answer reaches them
//! ([`Call`]), and everything a tool or prompt may use besides its arguments ([`ToolContext`]:
//! progress, log messages, questions to the client, announced changes).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use serde_json::{Map, Value, json};

use crate::error::ToolError;
use crate::mcp::events::{ChangeHub, EventSink, LogLevel, notification};
use crate::mcp::session::SessionState;
use crate::mcp::tasks::{TaskHandle, TaskStore};
use crate::security::key_policy::{KeyRules, PolicyDecision};
use crate::security::principal::Principal;

use crate::mcp::jsonrpc::Message;
use crate::mcp::version::Era;
use crate::observability::audit::event::cut;

/// What an MCP message asked for, attached to the response for the audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCall {
    /// A method this server knows is kept without a copy.
    pub method: Cow<'static, str>,
    /// The tool or prompt name, or the resource URI.
    pub name: Option<String>,
    pub era: Option<Era>,
}

impl McpCall {
    pub fn of(message: &Message) -> Option<Self> {
        let (method, params) = match message {
            Message::Request(r) => (&r.method, &r.params),
            Message::Notification(n) => (&n.method, &n.params),
            Message::Response { .. } => {
                return Some(Self {
                    method: Cow::Borrowed("response"),
                    name: None,
                    era: None,
                });
            }
        };
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .map(cut);
        Some(Self {
            method: match method.known_name() {
                Some(known) => Cow::Borrowed(known),
                None => Cow::Owned(cut(method.as_str())),
            },
            name,
            era: None,
        })
    }
}

/// What a tool noted for the audit: the path it touched, whether that was an escape attempt,
/// and whether its result was an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallNote {
    pub path: Option<String>,
    pub escape: bool,
    pub tool_error: Option<bool>,
    /// A per-key policy decision about the call (denied tool, tool over its limit).
    pub decision: Option<PolicyDecision>,
}

/// Shared between the transport (which attaches it to the response) and the tool.
pub type NoteCell = Arc<Mutex<CallNote>>;

/// Notes the sandbox path a call touched (or tried to), cut to size, for the audit log.
pub fn note_path(note: &NoteCell, path: &str, escape_attempt: bool) {
    let mut note = note.lock().unwrap_or_else(|e| e.into_inner());
    note.path = Some(cut(path));
    note.escape |= escape_attempt;
}

/// The client capability an input request needs.
pub fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// Who is calling, and how the answer can reach them.
#[derive(Debug, Clone)]
pub struct Call {
    pub era: Era,
    pub caller: Principal,
    /// The 2025-era session, if any.
    pub session: Option<Arc<SessionState>>,
    /// The request's response stream, if it may become one.
    pub sink: Option<EventSink>,
    /// What the tool notes for the audit log.
    pub note: NoteCell,
    /// What the caller may do.
    pub rules: Arc<KeyRules>,
    /// Where 2026-07-28 tasks are kept (`None`: this request cannot create or see tasks).
    pub tasks: Option<Arc<TaskStore>>,
}

/// How long a server-to-client request waits for the client's answer.
pub const CLIENT_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Everything a tool (or prompt) may use besides its arguments.
#[derive(Clone)]
pub struct ToolContext {
    pub era: Era,
    /// The key the request authenticated with.
    pub caller: Principal,
    /// The capabilities the client declared (this request's `_meta`, or the session's).
    pub client_capabilities: Map<String, Value>,
    /// `_meta.progressToken`, if the client asked for progress.
    pub progress_token: Option<Value>,
    /// The least severe level the client wants log messages for; `None`: no log messages.
    pub log_level: Option<LogLevel>,
    /// 2026-07-28 retry: the client's answers to the input requests, as sent.
    pub input_responses: Option<Value>,
    /// 2026-07-28 retry: the tool's own state from the previous round, already verified.
    pub state: Option<String>,
    pub changes: ChangeHub,
    /// What the call notes for the audit log.
    pub note: NoteCell,
    /// 2026-07-28: where this call may become a task (the client declared the extension).
    pub tasks: Option<Arc<TaskStore>>,
    sink: Option<EventSink>,
    session: Option<Arc<SessionState>>,
    /// The task this call runs as, if it became one.
    task: Option<TaskHandle>,
    /// Fires when the call is cancelled (`None`: it cannot be, and nothing is allocated).
    cancel: Option<CancellationToken>,
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("era", &self.era)
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl ToolContext {
    /// A context with no stream, no session and no client state (tests, internal calls).
    pub fn detached(era: Era, caller: impl Into<Principal>) -> Self {
        Self::announcing(era, caller, ChangeHub::new())
    }

    /// A context with no stream, no session and no client state whose changes are announced
    /// on `changes` (a server's own hub: a hub of its own allocates its whole buffer).
    pub fn announcing(era: Era, caller: impl Into<Principal>, changes: ChangeHub) -> Self {
        Self {
            era,
            caller: caller.into(),
            client_capabilities: Map::new(),
            progress_token: None,
            log_level: None,
            input_responses: None,
            state: None,
            changes,
            note: Default::default(),
            tasks: None,
            sink: None,
            session: None,
            task: None,
            cancel: None,
        }
    }

    /// The context of the call running as `task`: questions to the client go through the
    /// task (`input_required`), and there is no stream for progress or log messages (the
    /// tasks extension has none).
    pub fn into_task(mut self, task: TaskHandle, cancel: CancellationToken) -> Self {
        self.task = Some(task);
        self.cancel = Some(cancel);
        self.sink = None;
        self.progress_token = None;
        self.log_level = None;
        self
    }

    /// The token that says the call was cancelled (an embedder's own cancellation, tests).
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Whether the call was cancelled (a task's `tasks/cancel` or its expiry). Blocking work
    /// should check it between steps; async work is dropped anyway.
    pub fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// Completes when the call is cancelled (never, for a call that cannot be).
    pub async fn cancelled(&self) {
        match &self.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    }

    /// The 2025-era session of the call, if any.
    pub fn session(&self) -> Option<&Arc<SessionState>> {
        self.session.as_ref()
    }

    /// The id of the task this call runs as, if it became one.
    pub fn task_id(&self) -> Option<&str> {
        self.task.as_ref().map(TaskHandle::id)
    }

    /// Notes the sandbox path a file tool touched (or tried to), for the audit log.
    pub fn note_path(&self, path: &str, escape_attempt: bool) {
        note_path(&self.note, path, escape_attempt);
    }

    /// Attaches the request's response stream.
    pub fn with_stream(mut self, sink: EventSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Attaches the 2025-era session (for server-to-client requests).
    pub fn with_session(mut self, session: Arc<SessionState>) -> Self {
        self.session = Some(session);
        self
    }

    async fn emit(&self, message: Value) -> bool {
        match &self.sink {
            Some(sink) => sink.send(message).await.is_ok(),
            None => false,
        }
    }

    /// Sends `notifications/progress`, if the client asked for progress. `progress` must grow
    /// from one call to the next.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({ "progressToken": token, "progress": progress });
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        self.emit(notification("notifications/progress", params))
            .await;
    }

    /// Sends `notifications/message` if the client wants messages at `level`.
    pub async fn log(&self, level: LogLevel, logger: &str, data: Value) {
        if self.log_level.is_some_and(|min| level >= min) {
            let params = json!({ "level": level.as_str(), "logger": logger, "data": data });
            self.emit(notification("notifications/message", params))
                .await;
        }
    }

    /// 2025 era: sends a request to the client on the response stream and waits for its
    /// answer (`sampling/createMessage`, `elicitation/create`, `roots/list`).
    ///
    /// In a 2026-07-28 task the question goes through the task (`input_required`, answered
    /// by `tasks/update`), if the request declared the capability it needs.
    pub async fn ask_client(&self, method: &str, params: Value) -> Result<Value, ToolError> {
        if let Some(task) = &self.task {
            let declared = capability_for(method)
                .is_some_and(|cap| self.client_capabilities.contains_key(cap));
            if !declared {
                return Err(ToolError::Failed(
                    "the client did not declare the capability this question needs",
                ));
            }
            return task.ask(method, params).await;
        }
        let (Some(session), Some(_)) = (&self.session, &self.sink) else {
            return Err(ToolError::Failed(
                "the client cannot be asked in this context",
            ));
        };
        let (id, answer) = session.expect_answer().ok_or(ToolError::Failed(
            "too many requests to the client are pending",
        ))?;
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if !self.emit(request).await {
            session.forget(&id);
            return Err(ToolError::Failed("the client went away"));
        }
        let outcome = tokio::time::timeout(CLIENT_ANSWER_TIMEOUT, answer).await;
        session.forget(&id);
        match outcome {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(_))) => Err(ToolError::Failed("the client declined the request")),
            Ok(Err(_)) => Err(ToolError::Failed("the client went away")),
            Err(_) => Err(ToolError::Failed("the client did not answer in time")),
        }
    }

    /// 2026-07-28 retry: the client's answer to the input request named `key`.
    pub fn input_response(&self, key: &str) -> Option<&Value> {
        self.input_responses.as_ref()?.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc;
    use crate::observability::audit::MAX_FIELD;
    use crate::security::principal::KeyId;

    #[test]
    fn calls_record_method_and_name_cut_to_size() {
        let long = "x".repeat(1000);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{long}"}}}}"#
        );
        let m = jsonrpc::parse(body.as_bytes()).expect("parse");
        let call = McpCall::of(&m).expect("call");
        assert_eq!(call.method, "tools/call");
        assert_eq!(call.name.map(|n| n.len()), Some(MAX_FIELD));
    }
    #[tokio::test(start_paused = true)]
    async fn a_server_to_client_request_times_out_and_is_forgotten() {
        let session = Arc::new(SessionState::default());
        let (sink, mut stream) = crate::mcp::events::stream();
        let ctx = ToolContext::detached(Era::Legacy, KeyId::new("k"))
            .with_session(session.clone())
            .with_stream(sink);
        let ask = tokio::spawn(async move { ctx.ask_client("roots/list", json!({})).await });
        let sent = stream
            .recv()
            .await
            .expect("the request went out on the stream");
        assert_eq!(sent["method"], "roots/list");
        let outcome = ask.await.expect("task");
        assert_eq!(
            outcome,
            Err(ToolError::Failed("the client did not answer in time"))
        );
        let id = crate::mcp::jsonrpc::RequestId::String(sent["id"].as_str().expect("id").into());
        assert!(
            !session.answer(&id, Ok(json!({}))),
            "a late answer finds nobody waiting"
        );
    }

    #[test]
    fn pending_server_to_client_requests_are_bounded_per_session() {
        let session = SessionState::default();
        let held: Vec<_> = (0..crate::mcp::session::MAX_PENDING)
            .map(|_| session.expect_answer().expect("room"))
            .collect();
        assert!(session.expect_answer().is_none());
        session.forget(&held[0].0);
        assert!(session.expect_answer().is_some());
    }
}
