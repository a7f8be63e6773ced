//! [`McpServerBuilder`]: what an [`McpServer`] is made of (tools, resources, prompts, a
//! passthrough, the request-state sealer) and the capabilities that follow from it.

use std::sync::Arc;

use serde_json::json;

use super::{DEFAULT_INSTRUCTIONS, McpServer, Passthrough, SERVER_NAME};
use crate::mcp::events::ChangeHub;
use crate::mcp::prompts::PromptRegistry;
use crate::mcp::request_state::StateSealer;
use crate::mcp::resources::Resources;
use crate::tools::registry::{ToolProvider, ToolRegistry};

/// Assembles an [`McpServer`].
pub struct McpServerBuilder {
    /// Where the tools come from: the built-in [`ToolRegistry`] unless set.
    pub tools: Arc<dyn ToolProvider>,
    pub resources: Resources,
    pub prompts: PromptRegistry,
    /// Announce `listChanged` for tools / prompts / resources (an embedder that changes them
    /// announces through [`McpServer::changes`]).
    pub list_changed: bool,
    /// Each caller may see different tools (a policy file): `tools/list` results are private.
    pub per_caller_tools: bool,
    /// Seals `requestState` (a shared secret's, or, if `None`, a random one per process).
    pub sealer: Option<StateSealer>,
    pub instructions: Option<String>,
    pub changes: ChangeHub,
    /// Resources, prompts and completion answered by another server (a gateway's upstream).
    pub passthrough: Option<Arc<dyn Passthrough>>,
}

impl Default for McpServerBuilder {
    fn default() -> Self {
        Self {
            tools: Arc::new(ToolRegistry::new()),
            resources: Resources::default(),
            prompts: PromptRegistry::default(),
            list_changed: false,
            per_caller_tools: false,
            sealer: None,
            instructions: None,
            changes: ChangeHub::default(),
            passthrough: None,
        }
    }
}

impl McpServerBuilder {
    /// # Panics
    /// If the OS random generator is unavailable for the request-state key (at startup).
    pub fn build(self) -> Arc<McpServer> {
        let lc = self.list_changed;
        let mut capabilities = json!({ "tools": { "listChanged": lc }, "logging": {} });
        if !self.resources.is_empty() {
            capabilities["resources"] = json!({
                "subscribe": self.resources.supports_subscribe(),
                "listChanged": lc,
            });
        }
        if !self.prompts.is_empty() {
            capabilities["prompts"] = json!({ "listChanged": lc });
        }
        if !self.resources.is_empty() || !self.prompts.is_empty() {
            capabilities["completions"] = json!({});
        }
        if let Some(passthrough) = &self.passthrough {
            for (name, value) in passthrough.capabilities() {
                capabilities[name] = value;
            }
        }

        let mut server = McpServer {
            tools: self.tools,
            resources: self.resources,
            prompts: self.prompts,
            capabilities,
            server_info: json!({ "name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION") }),
            instructions: self
                .instructions
                .unwrap_or_else(|| DEFAULT_INSTRUCTIONS.to_owned()),
            changes: self.changes,
            sealer: self.sealer.unwrap_or_else(|| {
                StateSealer::random().expect("the OS random generator is needed at start")
            }),
            tools_scope: if self.per_caller_tools {
                "private"
            } else {
                "public"
            },
            precomputed: std::collections::HashMap::new(),
            passthrough: self.passthrough,
        };
        server.precompute();
        Arc::new(server)
    }
}
