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
//!   An input-required result is sealed by [`crate::mcp::input_required`].
//! - The protocol engine sees the tools through [`ToolProvider`]: the registry is today's one
//!   provider; a provider that forwards to an upstream MCP server is another.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::mcp::headers::{ParamHeader, param_headers};
use crate::mcp::input_required::resume;
use crate::mcp::jsonrpc::string_param;
use crate::mcp::request_state::StateSealer;
pub use crate::mcp::tasks::TaskSupport;
use crate::mcp::tasks::{self, Launched};
use crate::mcp::version::Era;
use crate::tools::digest::{DIGEST_META, digest};

/// What a tool is handed and how it fails, defined with the request context and the errors;
/// named here too, because every tool names them.
pub use crate::error::ToolError;
pub use crate::mcp::context::ToolContext;
pub use crate::tools::output::{InputRequired, ToolFuture, ToolOutput, result};

/// Where the protocol engine finds its tools: the `tools/list` entries, a `tools/call`, and the
/// `Mcp-Param-*` headers a call must carry. [`ToolRegistry`] is the built-in provider.
pub trait ToolProvider: Send + Sync + 'static {
    /// The `tools` array of `tools/list`, fixed while the server runs.
    fn listed(&self) -> &[Value];

    /// Handles `tools/call` params: the `CallToolResult` (or, in 2026-07-28, an
    /// `InputRequiredResult`).
    fn call<'a>(
        &'a self,
        params: &'a Map<String, Value>,
        ctx: ToolContext,
        sealer: &'a StateSealer,
    ) -> Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send + 'a>>;

    /// The `Mcp-Param-*` headers a call of `name` must carry (none for an unknown tool).
    fn param_headers(&self, name: &str) -> &[ParamHeader];

    /// Whether some tool may run as a task (the tasks extension is then advertised).
    fn offers_tasks(&self) -> bool {
        false
    }
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

/// A tool the server offers.
pub trait Tool: Send + Sync + 'static {
    fn definition(&self) -> ToolDefinition;
    /// Runs the tool with arguments that already passed its input schema.
    fn call(&self, arguments: Map<String, Value>, ctx: ToolContext) -> ToolFuture;
    /// Whether a 2026-07-28 call may (or must) become a task (tasks extension); by default
    /// never.
    fn task_support(&self) -> TaskSupport {
        TaskSupport::Forbidden
    }
}

struct Registered {
    tool: Arc<dyn Tool>,
    validator: jsonschema::Validator,
    requires: &'static [&'static str],
    param_headers: Vec<ParamHeader>,
    task: TaskSupport,
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
        let task = tool.task_support();
        let validator = jsonschema::draft202012::new(&def.input_schema)
            .unwrap_or_else(|e| panic!("input schema of tool {} does not compile: {e}", def.name));
        assert!(
            !self.by_name.contains_key(def.name),
            "tool {} registered twice",
            def.name
        );
        let param_headers =
            param_headers(&def.input_schema).unwrap_or_else(|e| panic!("tool {}: {e}", def.name));
        let mut entry = json!({
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
        });
        // The digest a client can pin the definition by (the gateway's pins use the same).
        entry["_meta"] = json!({ DIGEST_META: digest(&entry) });
        self.listed.push(entry);
        self.by_name.insert(def.name, self.tools.len());
        self.tools.push(Registered {
            tool: Arc::new(tool),
            validator,
            requires: def.requires_client,
            param_headers,
            task,
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
        // What a request state is sealed for: named only where one is opened or sealed.
        let target = || format!("tools/call {name}");
        if params.contains_key("requestState") {
            resume(params, &mut ctx, sealer, &target())?;
        } else {
            resume(params, &mut ctx, sealer, "")?;
        }
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
            if registered.task == TaskSupport::Required && ctx.tasks.is_none() {
                return Err(tasks::missing_extension());
            }
        }
        let instance = Value::Object(arguments);
        if let Some(refusal) = check_arguments(&registered.validator, &instance) {
            ctx.note
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .tool_error = Some(true);
            return Ok(result(Err(refusal)));
        }
        let Value::Object(arguments) = instance else {
            return Err(RpcError::Internal);
        };
        let support = registered.task;
        let outcome = match ctx.tasks.clone() {
            Some(store) if support != TaskSupport::Forbidden => {
                let (tool, run_ctx, caller) =
                    (registered.tool.clone(), ctx.clone(), ctx.caller.clone());
                let start =
                    move |task, cancel| tool.call(arguments, run_ctx.into_task(task, cancel));
                // Boxed: the common path (no task) does not carry this future's size.
                match Box::pin(tasks::launch(&store, support, &caller, name, start)).await {
                    Launched::Task(created) => return Ok(created),
                    Launched::Now(outcome) => outcome,
                }
            }
            _ => registered.tool.call(arguments, ctx.clone()).await,
        };
        ctx.note
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tool_error = Some(outcome.is_err());
        match outcome {
            Ok(ToolOutput {
                input_required: Some(input),
                ..
            }) => Ok(match ctx.era {
                Era::Modern => input.to_result(&ctx, sealer, &target()),
                Era::Legacy => result(Err(ToolError::Failed(
                    "this tool needs input that only 2026-07-28 clients can give",
                ))),
            }),
            Err(ToolError::Internal) => Err(RpcError::Internal),
            other => Ok(result(other)),
        }
    }

    /// The `Mcp-Param-*` headers a call of `name` must carry (none for an unknown tool).
    pub fn param_headers(&self, name: &str) -> &[ParamHeader] {
        self.by_name
            .get(name)
            .map_or(&[], |&i| self.tools[i].param_headers.as_slice())
    }

    /// The number of tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }
}

/// The first violation of `schema` by `arguments`, as the tool error a model can correct itself
/// from: where it is and what is wrong, the offending value masked.
pub fn check_arguments(schema: &jsonschema::Validator, arguments: &Value) -> Option<ToolError> {
    // `is_valid` allocates nothing; the error iterator is built only for a violation.
    if schema.is_valid(arguments) {
        return None;
    }
    let violation = schema.iter_errors(arguments).next()?;
    let location = violation.instance_path().to_string();
    let detail = violation.masked().to_string();
    let at = if location.is_empty() {
        "arguments".to_owned()
    } else {
        format!("arguments{location}")
    };
    Some(ToolError::InvalidArguments(format!("{at}: {detail}")))
}

impl ToolProvider for ToolRegistry {
    fn listed(&self) -> &[Value] {
        ToolRegistry::listed(self)
    }

    fn call<'a>(
        &'a self,
        params: &'a Map<String, Value>,
        ctx: ToolContext,
        sealer: &'a StateSealer,
    ) -> Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send + 'a>> {
        Box::pin(ToolRegistry::call(self, params, ctx, sealer))
    }

    fn param_headers(&self, name: &str) -> &[ParamHeader] {
        ToolRegistry::param_headers(self, name)
    }

    fn offers_tasks(&self) -> bool {
        self.tools.iter().any(|t| t.task != TaskSupport::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::auth::KeyId;

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

    #[test]
    fn listed_tools_carry_explicit_annotations() {
        let reg = registry();
        let t = &reg.listed()[0];
        assert_eq!(t["annotations"]["readOnlyHint"], true);
        assert_eq!(t["annotations"]["destructiveHint"], false);
        assert_eq!(t["annotations"]["openWorldHint"], false);
        assert_eq!(t["inputSchema"]["type"], "object");
        assert_eq!(
            t["_meta"][DIGEST_META].as_str(),
            Some(digest(t).as_str()),
            "our own tools carry the digest a client can pin them by"
        );
    }
}
