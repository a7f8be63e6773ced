//! The upstream's resources, prompts and completion, answered by the caller's own upstream
//! process (never another principal's). What the upstream offers is what its `initialize`
//! result declared, without subscriptions or change notifications (the gateway does not relay
//! those). Answers must be JSON objects; the upstream's error texts are never passed on.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::pool::Pool;
use crate::error::RpcError;
use crate::mcp::context::Call;
use crate::mcp::dispatch::Passthrough;
use crate::mcp::resources::BoxFuture;

/// The upstream's resources, prompts and completion.
pub struct UpstreamPassthrough {
    pool: Arc<Pool>,
    capabilities: Map<String, Value>,
}

impl UpstreamPassthrough {
    /// What `initialized` (the upstream's `initialize` result) declares, if anything.
    pub fn new(pool: Arc<Pool>, initialized: &Value) -> Option<Self> {
        let declared = initialized["capabilities"].as_object()?;
        let capabilities: Map<String, Value> = ["resources", "prompts", "completions"]
            .into_iter()
            .filter(|c| declared.get(*c).is_some_and(Value::is_object))
            .map(|c| (c.to_owned(), json!({})))
            .collect();
        (!capabilities.is_empty()).then_some(Self { pool, capabilities })
    }
}

impl Passthrough for UpstreamPassthrough {
    fn capabilities(&self) -> Map<String, Value> {
        self.capabilities.clone()
    }

    fn forward<'a>(
        &'a self,
        method: &'static str,
        params: Map<String, Value>,
        call: &'a Call,
    ) -> BoxFuture<'a, Result<Value, RpcError>> {
        Box::pin(async move {
            let running = self
                .pool
                .process_for(&call.caller, call.session.as_ref())
                .await?;
            let uri = params.get("uri").and_then(Value::as_str).map(str::to_owned);
            match running
                .upstream
                .request(method, Value::Object(params), None)
                .await
            {
                Ok(result) if result.is_object() => Ok(result),
                Ok(_) => Err(RpcError::Upstream(
                    "the upstream server sent an invalid result",
                )),
                Err(Ok(error)) => Err(match (error["code"].as_i64(), uri) {
                    (Some(-32002), Some(uri)) => RpcError::ResourceNotFound { uri },
                    (Some(-32602), _) => {
                        RpcError::InvalidParams("the upstream server refused the request".into())
                    }
                    _ => RpcError::Upstream("the upstream server answered with an error"),
                }),
                Err(Err(e)) => Err(e),
            }
        })
    }
}
