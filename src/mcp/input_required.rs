//! 2026-07-28 input-required results: what a tool or prompt asks the client before it can
//! finish, and the state it resumes from on the retry. The `requestState` is sealed here (HMAC,
//! bound to the target and the caller's key id, with a TTL) and opened on the retry; the
//! handler only ever sees its own plain state. Input requests for client capabilities the
//! request did not declare are dropped before the result leaves the server.

use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::mcp::context::{ToolContext, capability_for};
use crate::mcp::request_state::StateSealer;
use crate::mcp::version::Era;

pub use crate::tools::output::InputRequired;

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
