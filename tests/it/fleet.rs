//! Several instances behind one address: what they must agree on to serve each other's clients.

use secure_mcp_server::mcp::dispatch::McpServerBuilder;
use secure_mcp_server::mcp::request_state::StateSealer;
use secure_mcp_server::tools::registry::{
    Tool, ToolContext, ToolDefinition, ToolFuture, ToolOutput, ToolRegistry,
};
use serde_json::{Map, Value, json};

use crate::support::{Harness, first_text};

const SHARED: &[u8] = b"Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGkq";

/// Asks the client to confirm, then finishes on the retry with its own state back.
struct Confirm;

impl Tool for Confirm {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "confirm",
            title: "Confirm",
            description: "Asks the user to confirm, in two rounds",
            input_schema: json!({ "type": "object" }),
            read_only: true,
            requires_client: &[],
        }
    }

    fn call(&self, _arguments: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        Box::pin(async move {
            match (ctx.state.as_deref(), ctx.input_response("ask")) {
                (Some("round-1"), Some(answer)) => Ok(ToolOutput::text(format!(
                    "confirmed: {}",
                    answer["action"].as_str().unwrap_or("?")
                ))),
                _ => {
                    let mut requests = Map::new();
                    requests.insert(
                        "ask".into(),
                        json!({ "method": "elicitation/create",
                            "params": { "message": "Sure?", "requestedSchema": { "type": "object" } } }),
                    );
                    Ok(ToolOutput::input_required(requests, Some("round-1".into())))
                }
            }
        })
    }
}

/// One instance: the test harness's configuration, this tool, and `secret`'s sealer.
fn instance(secret: &[u8]) -> Harness {
    let base = Harness::new();
    let mut tools = ToolRegistry::new();
    tools.register(Confirm);
    let state = base.state.clone().with_server(
        McpServerBuilder {
            tools: std::sync::Arc::new(tools),
            sealer: Some(StateSealer::from_secret(secret)),
            ..McpServerBuilder::default()
        }
        .build(),
    );
    Harness::from_state(state)
}

#[tokio::test]
async fn a_multi_round_request_completes_when_its_rounds_land_on_different_instances() {
    let (a, b, stranger) = (
        instance(SHARED),
        instance(SHARED),
        instance(b"another-secret-Hs5dG1aK9eU7oI3rT6yP2x"),
    );
    let caps = json!({ "elicitation": {} });
    let first = a
        .modern_full(
            "tools/call",
            json!({ "name": "confirm", "arguments": {} }),
            caps.clone(),
            &[],
        )
        .await;
    let result = &first.json()["result"];
    assert_eq!(result["resultType"], "input_required", "{}", first.text);
    let state = result["requestState"].as_str().expect("sealed state");
    let retry = json!({ "name": "confirm", "arguments": {},
        "requestState": state, "inputResponses": { "ask": { "action": "accept" } } });
    let second = b
        .modern_full("tools/call", retry.clone(), caps.clone(), &[])
        .await;
    assert_eq!(first_text(&second.json()["result"]), "confirmed: accept");
    let elsewhere = stranger.modern_full("tools/call", retry, caps, &[]).await;
    assert_eq!(elsewhere.code(), -32602, "another secret opens nothing");
}
