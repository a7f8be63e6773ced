//! 2026-07-28 tasks in a fleet: a task runs where it began, and any instance answers for it
//! (its owner only), passes a cancel or answers on to it, and Redis holds no task id or key.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::redis_server::{RedisServer, fleet_of};
use crate::support::{Harness, KEY, OTHER_KEY};
use secure_mcp_server::mcp::dispatch::McpServerBuilder;
use secure_mcp_server::tools::registry::{
    TaskSupport, Tool, ToolContext, ToolDefinition, ToolFuture, ToolOutput, ToolRegistry,
};

const TASKS: &str = "io.modelcontextprotocol/tasks";

/// Always a task: asks the client for a word, then waits an hour unless `quick`.
struct Ask;

impl Tool for Ask {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "ask",
            title: "Ask",
            description: "Asks for a word",
            input_schema: json!({ "type": "object", "properties": { "quick": { "type": "boolean" } } }),
            read_only: true,
            requires_client: &[],
        }
    }
    fn call(&self, arguments: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        Box::pin(async move {
            let answer = ctx
                .ask_client("elicitation/create", json!({ "message": "A word?" }))
                .await?;
            if arguments.get("quick") != Some(&json!(true)) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok(ToolOutput::text(format!(
                "got {}",
                answer["content"]["word"]
            )))
        })
    }
    fn task_support(&self) -> TaskSupport {
        TaskSupport::Required
    }
}

fn instance(args: &[&str]) -> Harness {
    let mut tools = ToolRegistry::new();
    tools.register(Ask);
    let server = McpServerBuilder {
        tools: std::sync::Arc::new(tools),
        ..McpServerBuilder::default()
    }
    .build();
    Harness::serving(args, server)
}

fn capabilities() -> Value {
    json!({ "elicitation": {}, "extensions": { TASKS: {} } })
}

async fn send(h: &Harness, key: &str, method: &str, params: Value) -> Value {
    let auth = format!("Bearer {key}");
    let reply = h
        .modern_full(
            method,
            params,
            capabilities(),
            &[("authorization", Some(&auth))],
        )
        .await;
    reply.json()
}

async fn status_on(h: &Harness, id: &str, want: &str) -> Value {
    for _ in 0..100 {
        let task = send(h, KEY, "tasks/get", json!({ "taskId": id })).await["result"].clone();
        if task["status"] == want {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} never became {want}")
}

#[tokio::test]
async fn any_instance_answers_for_a_task_and_passes_answers_and_cancels_to_where_it_runs() {
    let redis = RedisServer::start();
    let (instances, _dir) = fleet_of(&redis, 3, &[], instance);
    let created = send(
        &instances[0],
        KEY,
        "tools/call",
        json!({ "name": "ask", "arguments": { "quick": true } }),
    )
    .await;
    let id = created["result"]["taskId"]
        .as_str()
        .expect("a task")
        .to_owned();
    // Durable before the answer: another instance finds it at once.
    let there = send(&instances[1], KEY, "tasks/get", json!({ "taskId": id })).await;
    assert!(there["result"]["status"].is_string(), "{there}");
    let asked = status_on(&instances[2], &id, "input_required").await;
    let key = asked["inputRequests"]
        .as_object()
        .expect("requests")
        .keys()
        .next()
        .expect("a key")
        .clone();
    // Another key, on any instance: unknown, like an id that never existed.
    for h in &instances {
        let foreign = send(h, OTHER_KEY, "tasks/get", json!({ "taskId": id })).await;
        assert_eq!(foreign["error"]["code"], -32602, "{foreign}");
        let cancel = send(h, OTHER_KEY, "tasks/cancel", json!({ "taskId": id })).await;
        assert_eq!(cancel["error"]["code"], -32602, "{cancel}");
    }
    let answer = json!({ key.clone(): { "action": "accept", "content": { "word": "fleet" } } });
    let ack = send(
        &instances[1],
        KEY,
        "tasks/update",
        json!({ "taskId": id, "inputResponses": answer }),
    )
    .await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    let done = status_on(&instances[2], &id, "completed").await;
    assert_eq!(done["result"]["content"][0]["text"], "got \"fleet\"");

    let slow = send(
        &instances[0],
        KEY,
        "tools/call",
        json!({ "name": "ask", "arguments": {} }),
    )
    .await;
    let slow = slow["result"]["taskId"]
        .as_str()
        .expect("a task")
        .to_owned();
    let ack = send(
        &instances[2],
        KEY,
        "tasks/cancel",
        json!({ "taskId": slow }),
    )
    .await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    status_on(&instances[1], &slow, "cancelled").await;
    let here = send(&instances[0], KEY, "tasks/get", json!({ "taskId": slow })).await;
    assert_eq!(
        here["result"]["status"], "cancelled",
        "stopped where it ran"
    );

    for entry in redis.dump().await {
        for secret in [id.as_str(), slow.as_str(), KEY, OTHER_KEY] {
            assert!(!entry.contains(secret), "{secret} in {entry}");
        }
    }
}
