//! The benchmark's peer (`bench/run.sh`, "peers"): one `echo` tool served by the official Rust
//! MCP SDK, `rmcp`, over its Streamable HTTP transport in stateless mode, as its examples
//! write a server, with no security layer. Prints `listening on http://ADDR/mcp`.
//!
//! Usage: `rmcp-echo [ADDR]` (default 127.0.0.1:0).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    message: String,
}

/// The server; its tool router is built once and shared by every request's handler.
#[derive(Clone)]
struct Echo {
    tools: std::sync::Arc<ToolRouter<Self>>,
}

#[tool_router]
impl Echo {
    fn new(tools: std::sync::Arc<ToolRouter<Self>>) -> Self {
        Self { tools }
    }

    #[tool(description = "Echoes its input back")]
    fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.message
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for Echo {}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    // Stateless (no 2025 sessions; 2026-07-28 requests are stateless in any case), with JSON
    // responses where the tool sends nothing before its result, as our server answers.
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = false;
    config.json_response = true;
    let tools = std::sync::Arc::new(Echo::tool_router());
    let service = StreamableHttpService::new(
        move || Ok(Echo::new(tools.clone())),
        LocalSessionManager::default().into(),
        config,
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, axum::Router::new().nest_service("/mcp", service)).await
}
