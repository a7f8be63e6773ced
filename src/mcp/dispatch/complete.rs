//! `completion/complete`: argument completion for a prompt's arguments or a resource
//! template's, answered by the prompt registry or the resource providers.

use serde_json::{Map, Value, json};

use super::McpServer;
use crate::error::RpcError;

impl McpServer {
    pub(super) async fn complete(
        &self,
        params: &Map<String, Value>,
        note: &crate::mcp::context::NoteCell,
    ) -> Result<Value, RpcError> {
        if self.prompts.is_empty() && self.resources.is_empty() {
            return Err(RpcError::MethodNotFound);
        }
        let bad = |what: &'static str| RpcError::InvalidParams(what.into());
        let reference = params
            .get("ref")
            .and_then(Value::as_object)
            .ok_or(bad("'ref' is required"))?;
        let argument = params
            .get("argument")
            .and_then(Value::as_object)
            .ok_or(bad("'argument' is required"))?;
        let arg_name = argument
            .get("name")
            .and_then(Value::as_str)
            .ok_or(bad("argument name is required"))?;
        let value = argument
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let values = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or(bad("prompt name is required"))?;
                self.require_prompts()?.complete(name, arg_name, value)?
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .ok_or(bad("uri is required"))?;
                self.require_resources()?
                    .complete(uri, arg_name, value, note)
                    .await
            }
            _ => return Err(bad("unknown reference type")),
        };
        Ok(json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } }))
    }
}
