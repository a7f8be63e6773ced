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

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::tools::sandbox::SandboxError;

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

/// A successful tool run: content blocks, and optionally structured content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Value>,
    pub structured: Option<Value>,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![json!({ "type": "text", "text": text.into() })],
            structured: None,
        }
    }

    /// Structured content, with its JSON also as a text block (as MCP recommends).
    pub fn structured(value: Value) -> Self {
        Self {
            content: vec![json!({ "type": "text", "text": value.to_string() })],
            structured: Some(value),
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
}

pub type ToolFuture = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send>>;

/// A tool the server offers.
pub trait Tool: Send + Sync + 'static {
    fn definition(&self) -> ToolDefinition;
    /// Runs the tool with arguments that already passed its input schema.
    fn call(&self, arguments: Map<String, Value>) -> ToolFuture;
}

struct Registered {
    tool: Arc<dyn Tool>,
    validator: jsonschema::Validator,
    requires: &'static [&'static str],
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

    /// Handles `tools/call` params: returns the `CallToolResult` object. `client_capabilities`
    /// are the capabilities the request declared (2026-07-28); `None` skips the check.
    pub async fn call(
        &self,
        params: &Map<String, Value>,
        client_capabilities: Option<&Map<String, Value>>,
    ) -> Result<Value, RpcError> {
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or(RpcError::InvalidParams(
                "tools/call needs a string 'name'".into(),
            ))?;
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
        if let Some(declared) = client_capabilities {
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
            return Ok(result(Err(ToolError::InvalidArguments(format!(
                "{at}: {detail}"
            )))));
        }
        let Value::Object(arguments) = instance else {
            return Err(RpcError::Internal);
        };
        Ok(result(registered.tool.call(arguments).await))
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
        fn call(&self, arguments: Map<String, Value>) -> ToolFuture {
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
    async fn required_client_capabilities_are_checked_when_declared_capabilities_are_known() {
        let reg = registry();
        let p = params(json!({"name":"echo","arguments":{"n":1}}));
        let none = Map::new();
        assert_eq!(
            reg.call(&p, Some(&none)).await,
            Err(RpcError::MissingCapability(json!({"sampling": {}})))
        );
        let with = params(json!({"sampling": {}}));
        assert!(reg.call(&p, Some(&with)).await.is_ok());
    }

    impl ToolRegistry {
        async fn call_unchecked(&self, p: &Map<String, Value>) -> Result<Value, RpcError> {
            self.call(p, None).await
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
