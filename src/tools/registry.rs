//! The tool registry: every tool's input schema compiled once at startup, arguments validated
//! on every call, and the one place a tool's outcome becomes an MCP `CallToolResult`.
//!
//! Decisions:
//! - Schemas are JSON Schema 2020-12 (MCP's default dialect), compiled with `jsonschema` built
//!   without its HTTP and file resolvers, so a `$ref` can never make the server fetch anything.
//!   A schema that does not compile is a programming error and stops the server at start.
//! - Arguments that fail the schema give a result with `isError: true` naming the violation and
//!   where it is, so a model can correct itself (MCP 2025-11-25, SEP-1303). The message masks
//!   the offending value instead of echoing it.
//! - An unknown tool or `arguments` that is not an object is a protocol error (`-32602`).
//! - `tools/list` is built once; the order is registration order (deterministic, as the
//!   2026-07-28 revision asks).
//! - A tool gets a [`ToolContext`]: it can report progress and log to the request's own
//!   response stream, ask the client (2025 era: a server-to-client request on that stream;
//!   2026-07-28: an input-required result, see [`InputRequired`]), and announce changes.
//! - An input-required result's `requestState` is sealed here (HMAC, bound to the tool and the
//!   caller's key id, with a TTL) and opened on the retry; the tool only ever sees its own
//!   plain state. Input requests for client capabilities the request did not declare are
//!   dropped before the result leaves the server.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::files::sandbox::SandboxError;
use crate::mcp::events::{ChangeHub, EventSink, LogLevel, notification};
use crate::mcp::request_state::StateSealer;
use crate::mcp::session::SessionState;
use crate::mcp::version::Era;
use crate::security::auth::KeyId;

/// How long a server-to-client request waits for the client's answer.
pub const CLIENT_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Everything a tool (or prompt) may use besides its arguments.
#[derive(Clone)]
pub struct ToolContext {
    pub era: Era,
    /// The key the request authenticated with.
    pub caller: KeyId,
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
    pub note: crate::mcp::context::NoteCell,
    sink: Option<EventSink>,
    session: Option<Arc<SessionState>>,
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
    pub fn detached(era: Era, caller: KeyId) -> Self {
        Self {
            era,
            caller,
            client_capabilities: Map::new(),
            progress_token: None,
            log_level: None,
            input_responses: None,
            state: None,
            changes: ChangeHub::new(),
            note: Default::default(),
            sink: None,
            session: None,
        }
    }

    /// Notes the sandbox path a file tool touched (or tried to), for the audit log.
    pub fn note_path(&self, path: &str, escape_attempt: bool) {
        crate::mcp::context::note_path(&self.note, path, escape_attempt);
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
    pub async fn ask_client(&self, method: &str, params: Value) -> Result<Value, ToolError> {
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

/// A 2026-07-28 input-required outcome: what to ask the client, and the state to resume from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRequired {
    /// `key → {"method": …, "params": …}`.
    pub requests: Map<String, Value>,
    /// The tool's own state, sealed before it leaves the server.
    pub state: Option<String>,
}

/// A required string parameter, or `-32602` with `message`.
pub fn string_param<'a>(
    params: &'a Map<String, Value>,
    key: &str,
    message: &'static str,
) -> Result<&'a str, RpcError> {
    params
        .get(key)
        .and_then(Value::as_str)
        .ok_or(RpcError::InvalidParams(message.into()))
}

/// The client capability an input request needs.
fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

impl InputRequired {
    /// The `InputRequiredResult`, with requests the client cannot answer dropped and the state
    /// sealed for `target` and `caller`.
    pub fn to_result(&self, ctx: &ToolContext, sealer: &StateSealer, target: &str) -> Value {
        let requests: Map<String, Value> = self
            .requests
            .iter()
            .filter(|(_, r)| {
                r.get("method")
                    .and_then(Value::as_str)
                    .and_then(capability_for)
                    .is_none_or(|cap| ctx.client_capabilities.contains_key(cap))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut result = json!({ "resultType": "input_required" });
        if !requests.is_empty() {
            result["inputRequests"] = Value::Object(requests);
        }
        let state = self.state.clone().unwrap_or_default();
        result["requestState"] = json!(sealer.seal(target, &ctx.caller, &state));
        result
    }
}

/// Opens the `requestState` and `inputResponses` of a retry into the context.
pub fn resume(
    params: &Map<String, Value>,
    ctx: &mut ToolContext,
    sealer: &StateSealer,
    target: &str,
) -> Result<(), RpcError> {
    if ctx.era != Era::Modern {
        return Ok(());
    }
    if let Some(sealed) = params.get("requestState") {
        let sealed = sealed
            .as_str()
            .ok_or(RpcError::InvalidParams("invalid requestState".into()))?;
        ctx.state = Some(sealer.open(sealed, target, &ctx.caller)?);
    }
    ctx.input_responses = params.get("inputResponses").cloned();
    Ok(())
}

/// What a tool declares about itself.
#[derive(Debug, Clone)]
pub struct ToolDefinition {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub input_schema: Value,
    pub read_only: bool,
    /// Client capabilities the tool needs (e.g. `sampling`); a 2026-07-28 call whose
    /// `clientCapabilities` lacks one is refused with `-32021`.
    pub requires_client: &'static [&'static str],
}

/// A successful tool run: content blocks, and optionally structured content; or, in
/// 2026-07-28, a request for input from the client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Value>,
    pub structured: Option<Value>,
    pub input_required: Option<InputRequired>,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> Self {
        Self::content(vec![json!({ "type": "text", "text": text.into() })])
    }

    /// Any content blocks.
    pub fn content(content: Vec<Value>) -> Self {
        Self {
            content,
            ..Self::default()
        }
    }

    /// Structured content, with its JSON also as a text block (as MCP recommends).
    pub fn structured(value: Value) -> Self {
        Self {
            content: vec![json!({ "type": "text", "text": value.to_string() })],
            structured: Some(value),
            input_required: None,
        }
    }

    /// Asks the client for input before the tool can finish (2026-07-28).
    pub fn input_required(requests: Map<String, Value>, state: Option<String>) -> Self {
        Self {
            input_required: Some(InputRequired { requests, state }),
            ..Self::default()
        }
    }
}

/// A tool that ran and failed; the message is shown to the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    #[error("Invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("{0}")]
    Sandbox(#[from] SandboxError),
    #[error("{0}")]
    Failed(&'static str),
    /// No file-job slot came free in time (see [`crate::files::jobs`]).
    #[error("{0}")]
    Busy(#[from] crate::files::jobs::Busy),
}

pub type ToolFuture = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send>>;

/// A tool the server offers.
pub trait Tool: Send + Sync + 'static {
    fn definition(&self) -> ToolDefinition;
    /// Runs the tool with arguments that already passed its input schema.
    fn call(&self, arguments: Map<String, Value>, ctx: ToolContext) -> ToolFuture;
}

struct Registered {
    tool: Arc<dyn Tool>,
    validator: jsonschema::Validator,
    requires: &'static [&'static str],
    param_headers: Vec<ParamHeader>,
}

/// The JSON type of an argument mirrored into a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    String,
    Integer,
    Boolean,
}

/// An argument the client mirrors into an `Mcp-Param-<name>` header (`x-mcp-header`,
/// MCP 2026-07-28).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// The header name, lowercase: `mcp-param-<name>`.
    pub header: String,
    /// The argument's location: property names from the root of `arguments`.
    pub path: Vec<String>,
    pub kind: ParamKind,
}

/// The `x-mcp-header` annotations of an input schema, reachable through `properties` only.
///
/// # Errors
/// An annotation the specification does not allow (an empty or non-token name, a name used
/// twice, a type other than string, integer or boolean).
pub fn param_headers(schema: &Value) -> Result<Vec<ParamHeader>, String> {
    fn walk(
        node: &Value,
        path: &mut Vec<String>,
        out: &mut Vec<ParamHeader>,
    ) -> Result<(), String> {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            return Ok(());
        };
        for (key, sub) in props {
            path.push(key.clone());
            if let Some(name) = sub.get("x-mcp-header") {
                let name = name.as_str().unwrap_or_default();
                let token = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    return Err(format!("x-mcp-header of '{key}' is not an HTTP token"));
                }
                let kind = match sub.get("type").and_then(Value::as_str) {
                    Some("string") => ParamKind::String,
                    Some("integer") => ParamKind::Integer,
                    Some("boolean") => ParamKind::Boolean,
                    _ => {
                        return Err(format!(
                            "x-mcp-header of '{key}' needs a string, integer or boolean type"
                        ));
                    }
                };
                let header = format!("mcp-param-{}", name.to_ascii_lowercase());
                if out.iter().any(|p| p.header == header) {
                    return Err(format!("x-mcp-header '{name}' is used twice"));
                }
                out.push(ParamHeader {
                    header,
                    path: path.clone(),
                    kind,
                });
            }
            walk(sub, path, out)?;
            path.pop();
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// The tools, their compiled schemas, and the prebuilt `tools/list` entries.
pub struct ToolRegistry {
    tools: Vec<Registered>,
    by_name: HashMap<&'static str, usize>,
    listed: Vec<Value>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Default for ToolRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ToolRegistry {
    pub fn new() -> Self {
        Self {
            tools: Vec::new(),
            by_name: HashMap::new(),
            listed: Vec::new(),
        }
    }

    /// Adds a tool, compiling its schema.
    ///
    /// # Panics
    /// If the schema does not compile or the name is taken: both are programming errors,
    /// found at startup.
    pub fn register(&mut self, tool: impl Tool) -> &mut Self {
        let def = tool.definition();
        let validator = jsonschema::draft202012::new(&def.input_schema)
            .unwrap_or_else(|e| panic!("input schema of tool {} does not compile: {e}", def.name));
        assert!(
            !self.by_name.contains_key(def.name),
            "tool {} registered twice",
            def.name
        );
        let param_headers =
            param_headers(&def.input_schema).unwrap_or_else(|e| panic!("tool {}: {e}", def.name));
        self.listed.push(json!({
            "name": def.name,
            "title": def.title,
            "description": def.description,
            "inputSchema": def.input_schema,
            "annotations": {
                "title": def.title,
                "readOnlyHint": def.read_only,
                "destructiveHint": !def.read_only,
                "idempotentHint": def.read_only,
                "openWorldHint": false,
            },
        }));
        self.by_name.insert(def.name, self.tools.len());
        self.tools.push(Registered {
            tool: Arc::new(tool),
            validator,
            requires: def.requires_client,
            param_headers,
        });
        self
    }

    /// The `tools` array of `tools/list`.
    pub fn listed(&self) -> &[Value] {
        &self.listed
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Handles `tools/call` params: returns the `CallToolResult` (or, in 2026-07-28, an
    /// `InputRequiredResult`). Required client capabilities are checked in 2026-07-28, where
    /// each request declares them.
    pub async fn call(
        &self,
        params: &Map<String, Value>,
        mut ctx: ToolContext,
        sealer: &StateSealer,
    ) -> Result<Value, RpcError> {
        let name = string_param(params, "name", "tools/call needs a string 'name'")?;
        let index = *self
            .by_name
            .get(name)
            .ok_or(RpcError::InvalidParams("unknown tool".into()))?;
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => {
                return Err(RpcError::InvalidParams(
                    "'arguments' must be an object".into(),
                ));
            }
        };
        let registered = &self.tools[index];
        let target = format!("tools/call {name}");
        resume(params, &mut ctx, sealer, &target)?;
        if ctx.era == Era::Modern {
            let declared = &ctx.client_capabilities;
            let missing: Map<String, Value> = registered
                .requires
                .iter()
                .filter(|c| !declared.contains_key(**c))
                .map(|c| ((*c).to_owned(), json!({})))
                .collect();
            if !missing.is_empty() {
                return Err(RpcError::MissingCapability(Value::Object(missing)));
            }
        }
        let instance = Value::Object(arguments);
        if let Some(violation) = registered.validator.iter_errors(&instance).next() {
            let location = violation.instance_path().to_string();
            let detail = violation.masked().to_string();
            let at = if location.is_empty() {
                "arguments".to_owned()
            } else {
                format!("arguments{location}")
            };
            ctx.note
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .tool_error = Some(true);
            return Ok(result(Err(ToolError::InvalidArguments(format!(
                "{at}: {detail}"
            )))));
        }
        let Value::Object(arguments) = instance else {
            return Err(RpcError::Internal);
        };
        let outcome = registered.tool.call(arguments, ctx.clone()).await;
        ctx.note
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tool_error = Some(outcome.is_err());
        match outcome {
            Ok(ToolOutput {
                input_required: Some(input),
                ..
            }) => Ok(match ctx.era {
                Era::Modern => input.to_result(&ctx, sealer, &target),
                Era::Legacy => result(Err(ToolError::Failed(
                    "this tool needs input that only 2026-07-28 clients can give",
                ))),
            }),
            other => Ok(result(other)),
        }
    }

    /// The `Mcp-Param-*` headers a call of `name` must carry (none for an unknown tool).
    pub fn param_headers(&self, name: &str) -> &[ParamHeader] {
        self.by_name
            .get(name)
            .map_or(&[], |&i| self.tools[i].param_headers.as_slice())
    }

    /// The registered tool names, in order.
    pub fn names(&self) -> Vec<String> {
        self.listed
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// The number of tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }
}

/// The `CallToolResult` for an outcome.
pub fn result(outcome: Result<ToolOutput, ToolError>) -> Value {
    match outcome {
        Ok(output) => {
            let mut r = json!({ "content": output.content, "isError": false });
            if let Some(s) = output.structured {
                r["structuredContent"] = s;
            }
            r
        }
        Err(e) => json!({
            "content": [{ "type": "text", "text": e.to_string() }],
            "isError": true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Tool for Echo {
        fn definition(&self) -> ToolDefinition {
            ToolDefinition {
                name: "echo",
                title: "Echo",
                description: "Echoes",
                input_schema: json!({
                    "type": "object",
                    "properties": { "n": { "type": "integer", "minimum": 0 } },
                    "required": ["n"],
                    "additionalProperties": false
                }),
                read_only: true,
                requires_client: &["sampling"],
            }
        }
        fn call(&self, arguments: Map<String, Value>, _ctx: ToolContext) -> ToolFuture {
            Box::pin(async move { Ok(ToolOutput::text(arguments["n"].to_string())) })
        }
    }

    fn registry() -> ToolRegistry {
        let mut r = ToolRegistry::new();
        r.register(Echo);
        r
    }

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[tokio::test]
    async fn valid_arguments_run_the_tool() {
        let r = registry()
            .call_unchecked(&params(json!({"name":"echo","arguments":{"n":4}})))
            .await;
        let r = r.expect("result");
        assert_eq!(r["isError"], false);
        assert_eq!(r["content"][0]["text"], "4");
    }

    #[tokio::test]
    async fn schema_violations_are_is_error_results_naming_the_violation() {
        let reg = registry();
        for (args, needle) in [
            (json!({}), "n"),
            (json!({"n": "four"}), "/n"),
            (json!({"n": -1}), "/n"),
            (json!({"n": 1, "extra": true}), "extra"),
        ] {
            let r = reg
                .call_unchecked(&params(json!({"name":"echo","arguments":args})))
                .await
                .expect("result");
            assert_eq!(r["isError"], true, "{args}");
            let text = r["content"][0]["text"].as_str().expect("text");
            assert!(text.starts_with("Invalid arguments: arguments"), "{text}");
            assert!(text.contains(needle), "{text} should name {needle}");
            assert!(!text.contains("four"), "the value is masked: {text}");
        }
    }

    #[tokio::test]
    async fn unknown_tools_and_non_object_arguments_are_protocol_errors() {
        let reg = registry();
        assert!(matches!(
            reg.call_unchecked(&params(json!({"name":"nope"}))).await,
            Err(RpcError::InvalidParams(_))
        ));
        assert!(matches!(
            reg.call_unchecked(&params(json!({"name":"echo","arguments":[1]})))
                .await,
            Err(RpcError::InvalidParams(_))
        ));
        assert!(matches!(
            reg.call_unchecked(&params(json!({}))).await,
            Err(RpcError::InvalidParams(_))
        ));
    }

    #[tokio::test]
    async fn required_client_capabilities_are_checked_in_2026() {
        let reg = registry();
        let sealer = StateSealer::random().expect("rng");
        let p = params(json!({"name":"echo","arguments":{"n":1}}));
        let ctx = ToolContext::detached(Era::Modern, KeyId::new("k"));
        assert_eq!(
            reg.call(&p, ctx.clone(), &sealer).await,
            Err(RpcError::MissingCapability(json!({"sampling": {}})))
        );
        let mut with = ctx;
        with.client_capabilities = params(json!({"sampling": {}}));
        assert!(reg.call(&p, with, &sealer).await.is_ok());
    }

    impl ToolRegistry {
        async fn call_unchecked(&self, p: &Map<String, Value>) -> Result<Value, RpcError> {
            let sealer = StateSealer::random().expect("rng");
            self.call(
                p,
                ToolContext::detached(Era::Legacy, KeyId::new("k")),
                &sealer,
            )
            .await
        }
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

    #[test]
    fn x_mcp_header_annotations_are_found_and_checked() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry-Run"}}},
            "items": {"type": "array", "items": {"type": "string", "x-mcp-header": "Ignored"}}
        }});
        let found = param_headers(&schema).expect("valid");
        assert_eq!(found.len(), 2);
        assert!(found.contains(&ParamHeader {
            header: "mcp-param-region".into(),
            path: vec!["region".into()],
            kind: ParamKind::String
        }));
        assert!(found.contains(&ParamHeader {
            header: "mcp-param-dry-run".into(),
            path: vec!["opts".into(), "dry".into()],
            kind: ParamKind::Boolean
        }));
        for bad in [
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "has space"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "X"}, "b": {"type": "string", "x-mcp-header": "x"}}}),
        ] {
            assert!(param_headers(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listed_tools_carry_explicit_annotations() {
        let reg = registry();
        let t = &reg.listed()[0];
        assert_eq!(t["annotations"]["readOnlyHint"], true);
        assert_eq!(t["annotations"]["destructiveHint"], false);
        assert_eq!(t["annotations"]["openWorldHint"], false);
        assert_eq!(t["inputSchema"]["type"], "object");
    }
}
