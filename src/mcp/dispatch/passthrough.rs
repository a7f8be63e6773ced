//! Resources, prompts and completion answered by another MCP server on the caller's behalf
//! (the gateway's upstream, [`crate::gateway`]): a [`Passthrough`] adds its capabilities to the
//! server's and answers those methods, under the caller's rules like local ones (a caller
//! whose policy denies resources gets `-32601` for them, as from a server without any).

use serde_json::{Map, Value};

use super::{CacheHint, FILES_TTL_MS, McpServer};
use crate::error::RpcError;
use crate::mcp::context::Call;
use crate::mcp::method::Method;
use crate::mcp::resources::BoxFuture;

/// Another server that answers resources, prompts and completion.
pub trait Passthrough: Send + Sync + 'static {
    /// The capabilities it answers for (`resources`, `prompts`, `completions`).
    fn capabilities(&self) -> Map<String, Value>;
    /// Answers `method` with `params` (their `_meta` already removed) for the caller of
    /// `call` (its principal, and its 2025 session if it has one).
    fn forward<'a>(
        &'a self,
        method: &'static str,
        params: Map<String, Value>,
        call: &'a Call,
    ) -> BoxFuture<'a, Result<Value, RpcError>>;
}

/// The capability a passed-through method needs, for the methods that can be passed through.
fn capability_of(method: &Method) -> Option<&'static str> {
    match method {
        Method::ResourcesList | Method::ResourcesRead | Method::ResourcesTemplatesList => {
            Some("resources")
        }
        Method::PromptsList | Method::PromptsGet => Some("prompts"),
        Method::CompletionComplete => Some("completions"),
        _ => None,
    }
}

impl McpServer {
    /// The passthrough's answer to `method`, if it answers that method, with the cache hint of
    /// a 2026 list or read (private: each caller has its own upstream process).
    pub(super) async fn pass_through(
        &self,
        method: &Method,
        params: &Map<String, Value>,
        call: &Call,
    ) -> Option<(Result<Value, RpcError>, Option<CacheHint>)> {
        let passthrough = self.passthrough.as_ref()?;
        let capability = capability_of(method)?;
        if !passthrough.capabilities().contains_key(capability) {
            return None;
        }
        if capability != "prompts" && !call.rules.resources {
            return Some((Err(RpcError::MethodNotFound), None));
        }
        let mut params = params.clone();
        params.remove("_meta");
        let name = method.known_name()?;
        let cache = match method {
            Method::PromptsGet | Method::CompletionComplete => None,
            _ => Some((FILES_TTL_MS, "private")),
        };
        Some((passthrough.forward(name, params, call).await, cache))
    }
}
