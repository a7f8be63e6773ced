//! The caller's rules (see [`crate::security::key_policy`]) where the engine answers: the
//! tools a caller may see and call, the limits on its calls of a tool, and whether it may use
//! resources. A tool the caller may not see is answered exactly like a tool that does not
//! exist, so the answer does not confirm that it does.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{McpServer, TOOLS_TTL_MS};
use crate::error::{RpcError, ToolError};
use crate::mcp::context::Call;
use crate::mcp::jsonrpc::{Request, string_param};
use crate::mcp::resources::Resources;
use crate::mcp::version::Era;
use crate::security::key_policy::{KeyRules, PolicyBook, PolicyDecision};
use crate::tools::registry::result;

impl McpServer {
    /// The `tools` entries the caller may see, in registration order.
    pub(super) fn listed_tools(&self, rules: &KeyRules) -> Vec<Value> {
        self.tools
            .listed()
            .iter()
            .filter(|t| t["name"].as_str().is_some_and(|n| rules.allows_tool(n)))
            .cloned()
            .collect()
    }

    /// The serialized `tools/list` result for rules that restrict tools: made on first use and
    /// kept with the rules (a reload replaces the rules, and the result with them).
    pub(super) fn tools_list_for(&self, rules: &KeyRules, era: Era) -> Arc<str> {
        let slot = match era {
            Era::Legacy => &rules.tools_list[0],
            Era::Modern => &rules.tools_list[1],
        };
        slot.get_or_init(|| {
            let result = json!({ "tools": self.listed_tools(rules) });
            let result = match era {
                Era::Legacy => result,
                Era::Modern => self.modern_result(result, Some((TOOLS_TTL_MS, self.tools_scope))),
            };
            Arc::from(result.to_string())
        })
        .clone()
    }

    /// `tools/call` under the caller's rules: a tool it may not see is unknown; a tool over its
    /// per-key limit fails with a result that says when to retry.
    pub(super) async fn call_tool(
        &self,
        request: &Request,
        call: &Call,
    ) -> Result<Value, RpcError> {
        let params = &request.params;
        let name = string_param(params, "name", "tools/call needs a string 'name'")?;
        let decide = |decision: PolicyDecision| {
            call.note.lock().unwrap_or_else(|e| e.into_inner()).decision = Some(decision);
        };
        if !call.rules.allows_tool(name) {
            decide(PolicyDecision::DENIED_TOOL);
            return Err(RpcError::InvalidParams("unknown tool".into()));
        }
        let now = tokio::time::Instant::now();
        if let Err(retry_after_secs) =
            PolicyBook::admit_tool(&call.rules, &call.caller, name, now).await
        {
            decide(PolicyDecision::TOOL_RATE_LIMITED);
            return Ok(result(Err(ToolError::RateLimited { retry_after_secs })));
        }
        let ctx = self.context(request, call)?;
        self.tools.call(params, ctx, &self.sealer).await
    }

    /// The resources, if the caller may use them (else, as for a server without resources,
    /// the method is not found).
    pub(super) fn resources_for(&self, call: &Call) -> Result<&Resources, RpcError> {
        if call.rules.resources {
            self.require_resources()
        } else {
            Err(RpcError::MethodNotFound)
        }
    }
}
