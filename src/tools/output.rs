//! What a tool run gives back ([`ToolOutput`], or a [`ToolError`]), and the one place an
//! outcome becomes an MCP `CallToolResult` ([`result`]). Kept apart from the registry so that
//! what runs a tool (the registry, a task) and what keeps its outcome (a task record) share
//! the type without depending on each other.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value, json};

use crate::error::ToolError;

/// A 2026-07-28 input-required outcome: what to ask the client, and the state to resume from
/// (sealed by [`crate::mcp::input_required`] before it leaves the server).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRequired {
    /// `key → {"method": …, "params": …}`.
    pub requests: Map<String, Value>,
    /// The tool's own state, sealed before it leaves the server.
    pub state: Option<String>,
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

pub type ToolFuture = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send>>;

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
