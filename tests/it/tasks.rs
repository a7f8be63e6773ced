//! The 2026-07-28 tasks extension on the real router: `search_files` as a task, who may see a
//! task, the order of the checks on `tasks/*`, and what a reload or a restart does to tasks.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use secure_mcp_server::keys::{generate_key, keys_file_line};
use secure_mcp_server::mcp::dispatch::McpServerBuilder;
use secure_mcp_server::tools::registry::{
    TaskSupport, Tool, ToolContext, ToolDefinition, ToolFuture, ToolOutput, ToolRegistry,
};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::support::{Harness, KEY, MODERN, OTHER_KEY, Reply};

const TASKS: &str = "io.modelcontextprotocol/tasks";

fn with_tasks() -> Value {
    json!({ "extensions": { TASKS: {} } })
}

/// A harness whose `search_files` always becomes a task (no grace period).
fn harness(extra: &[&str]) -> Harness {
    Harness::configured(extra, |config| {
        config.bounds.tasks.grace = Duration::ZERO;
    })
}

fn as_key(key: &str) -> String {
    format!("Bearer {key}")
}

async fn tasks_call(h: &Harness, key: &str, method: &str, id: &str) -> Reply {
    let auth = as_key(key);
    let params = match method {
        "tasks/update" => json!({ "taskId": id, "inputResponses": {} }),
        _ => json!({ "taskId": id }),
    };
    h.modern_full(
        method,
        params,
        with_tasks(),
        &[("authorization", Some(&auth))],
    )
    .await
}

/// Starts a search task as `key`; its id.
async fn search_task(h: &Harness, key: &str) -> String {
    let auth = as_key(key);
    let reply = h
        .modern_full(
            "tools/call",
            json!({ "name": "search_files", "arguments": { "path": "/", "pattern": "*.md" } }),
            with_tasks(),
            &[("authorization", Some(&auth))],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let created = &reply.json()["result"];
    assert_eq!(created["resultType"], "task", "{created}");
    for absent in [
        "result",
        "content",
        "requestState",
        "inputRequests",
        "task",
        "ttl",
    ] {
        assert!(created.get(absent).is_none(), "{absent} in {created}");
    }
    created["taskId"].as_str().expect("taskId").to_owned()
}

async fn until_terminal(h: &Harness, key: &str, id: &str) -> Value {
    for _ in 0..200 {
        let reply = tasks_call(h, key, "tasks/get", id).await;
        let task = reply.json()["result"].clone();
        if ["completed", "failed", "cancelled"].contains(&task["status"].as_str().unwrap_or("")) {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the task never ended")
}

#[tokio::test]
async fn discover_advertises_the_extension_and_a_search_becomes_a_task_its_owner_polls() {
    let h = harness(&[]);
    let discover = h.modern("server/discover", json!({})).await.json();
    let capabilities = &discover["result"]["capabilities"];
    assert_eq!(capabilities["extensions"][TASKS], json!({}));
    assert!(capabilities.get("tasks").is_none());
    let id = search_task(&h, KEY).await;
    let task = until_terminal(&h, KEY, &id).await;
    assert_eq!(task["status"], "completed");
    assert_eq!(task["resultType"], "complete");
    let matches = &task["result"]["structuredContent"]["matches"];
    assert_eq!(matches[0]["path"], "data/sub/notes.md", "{task}");
    // Without the extension the same call answers at once.
    let plain = h
        .call_tool("search_files", json!({ "path": "/", "pattern": "*.md" }))
        .await;
    assert!(plain.get("taskId").is_none() && plain["content"].is_array());
}

#[tokio::test]
async fn a_task_of_one_key_is_unknown_to_another_exactly_like_an_id_that_never_existed() {
    let h = harness(&[]);
    let id = search_task(&h, KEY).await;
    until_terminal(&h, KEY, &id).await;
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let foreign = tasks_call(&h, OTHER_KEY, method, &id).await;
        let never = tasks_call(&h, OTHER_KEY, method, "tasks-never-existed-0000000").await;
        assert_eq!(foreign.code(), -32602, "{method}: {}", foreign.text);
        assert_eq!(foreign.status, never.status, "{method}");
        assert_eq!(foreign.json()["error"], never.json()["error"], "{method}");
    }
    let mine = tasks_call(&h, KEY, "tasks/get", &id).await;
    assert_eq!(mine.json()["result"]["status"], "completed", "untouched");
}

#[tokio::test]
async fn tasks_methods_check_the_extension_before_the_id_and_the_name_header_against_it() {
    let h = harness(&[]);
    let id = search_task(&h, KEY).await;
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let undeclared = h
            .modern_full(
                method,
                json!({ "taskId": id, "inputResponses": {} }),
                json!({}),
                &[],
            )
            .await;
        assert_eq!(undeclared.status, StatusCode::BAD_REQUEST, "{method}");
        assert_eq!(undeclared.code(), -32021, "{method}");
        assert_eq!(
            undeclared.json()["error"]["data"]["requiredCapabilities"]["extensions"][TASKS],
            json!({})
        );
        let renamed = h
            .modern_full(
                method,
                json!({ "taskId": id, "inputResponses": {} }),
                with_tasks(),
                &[("mcp-name", Some("another-task"))],
            )
            .await;
        assert_eq!(renamed.code(), -32020, "{method}: {}", renamed.text);
    }
    for removed in ["tasks/result", "tasks/list"] {
        let reply = h
            .modern_full(removed, json!({ "taskId": id }), with_tasks(), &[])
            .await;
        assert_eq!(reply.code(), -32601, "{removed}");
    }
}

#[tokio::test]
async fn a_reload_that_replaces_a_key_under_the_same_id_does_not_hand_it_the_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys");
    let (old, new) = (generate_key().expect("rng"), generate_key().expect("rng"));
    std::fs::write(&file, keys_file_line("ops", &old)).expect("write");
    let file_arg = file.to_string_lossy().into_owned();
    let h = harness(&["--keys-file", &file_arg]);
    let id = search_task(&h, &old).await;
    until_terminal(&h, &old, &id).await;
    std::fs::write(&file, keys_file_line("ops", &new)).expect("write");
    h.state.keys.reload().expect("reload");
    let reply = tasks_call(&h, &new, "tasks/get", &id).await;
    assert_eq!(reply.code(), -32602, "{}", reply.text);
    assert_eq!(
        tasks_call(&h, &old, "tasks/get", &id).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_restarted_server_knows_no_task_of_before() {
    let before = harness(&[]);
    let id = search_task(&before, KEY).await;
    until_terminal(&before, KEY, &id).await;
    let after = harness(&[]);
    assert_eq!(
        tasks_call(&after, KEY, "tasks/get", &id).await.code(),
        -32602
    );
}

/// A tool that always runs as a task and never finishes on its own.
struct Endless;

impl Tool for Endless {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "endless",
            title: "Endless",
            description: "Runs until cancelled",
            input_schema: json!({ "type": "object" }),
            read_only: true,
            requires_client: &[],
        }
    }
    fn call(&self, _: Map<String, Value>, _: ToolContext) -> ToolFuture {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(ToolOutput::text("never"))
        })
    }
    fn task_support(&self) -> TaskSupport {
        TaskSupport::Required
    }
}

fn endless_harness(extra: &[&str]) -> Harness {
    let mut tools = ToolRegistry::new();
    tools.register(Endless);
    let server = McpServerBuilder {
        tools: std::sync::Arc::new(tools),
        ..McpServerBuilder::default()
    }
    .build();
    Harness::serving(extra, server)
}

async fn endless_call(h: &Harness, key: &str) -> Value {
    let auth = as_key(key);
    let reply = h
        .modern_full(
            "tools/call",
            json!({ "name": "endless", "arguments": {} }),
            with_tasks(),
            &[("authorization", Some(&auth))],
        )
        .await;
    reply.json()["result"].clone()
}

#[tokio::test]
async fn unfinished_tasks_per_key_are_capped_and_a_cancel_frees_a_place() {
    let h = endless_harness(&["--max-tasks-per-key", "2"]);
    let first = endless_call(&h, KEY).await;
    let first = first["taskId"].as_str().expect("task").to_owned();
    assert_eq!(endless_call(&h, KEY).await["resultType"], "task");
    let refused = endless_call(&h, KEY).await;
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("unfinished"))
    );
    assert_eq!(
        endless_call(&h, OTHER_KEY).await["resultType"],
        "task",
        "another key's own cap"
    );
    let ack = tasks_call(&h, KEY, "tasks/cancel", &first).await.json();
    assert_eq!(ack["result"]["resultType"], "complete");
    assert_eq!(
        tasks_call(&h, KEY, "tasks/get", &first).await.json()["result"]["status"],
        "cancelled"
    );
    assert_eq!(endless_call(&h, KEY).await["resultType"], "task");
}

#[tokio::test]
async fn listen_follows_the_callers_own_tasks_only_and_hears_them_end() {
    let h = endless_harness(&[]);
    let mine = endless_call(&h, KEY).await["taskId"]
        .as_str()
        .expect("id")
        .to_owned();
    let theirs = endless_call(&h, OTHER_KEY).await["taskId"]
        .as_str()
        .expect("id")
        .to_owned();
    let listen = |capabilities: Value| {
        let body = json!({ "jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen", "params": {
            "notifications": { "taskIds": [mine, theirs] },
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": capabilities,
            }
        }});
        Request::post("/mcp")
            .header("host", "127.0.0.1")
            .header("authorization", as_key(KEY))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "subscriptions/listen")
            .body(Body::from(body.to_string()))
            .expect("request")
    };
    let undeclared = h.send(listen(json!({}))).await;
    assert_eq!(undeclared.code(), -32021);
    let response = h
        .app
        .clone()
        .oneshot(listen(with_tasks()))
        .await
        .expect("response");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body().into_data_stream();
    let ack = next_message(&mut body).await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"]["taskIds"],
        json!([mine]),
        "{ack}"
    );
    tasks_call(&h, OTHER_KEY, "tasks/cancel", &theirs).await;
    tasks_call(&h, KEY, "tasks/cancel", &mine).await;
    let heard = next_message(&mut body).await;
    assert_eq!(heard["method"], "notifications/tasks");
    assert_eq!(
        heard["params"]["taskId"],
        mine.as_str(),
        "never another key's task"
    );
    assert_eq!(heard["params"]["status"], "cancelled");
}

async fn next_message(body: &mut axum::body::BodyDataStream) -> Value {
    let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("in time")
        .expect("chunk")
        .expect("bytes");
    let text = String::from_utf8_lossy(&chunk).into_owned();
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data: {text}"));
    serde_json::from_str(data).expect("json")
}

/// The fixtures server (`examples/everything`, built by `cargo test` beside this test binary).
fn fixtures_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("examples").join("everything");
    assert!(
        path.exists(),
        "{} is built by `cargo test` (scripts/test.sh)",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_binary_caps_the_unfinished_tasks_of_each_key() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(fixtures_binary())
        .args([
            "--api-key",
            KEY,
            "--api-key",
            OTHER_KEY,
            "--bind",
            "127.0.0.1:0",
        ])
        .args(["--max-tasks-per-key", "2", "--rate-limit", "100000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("an address")
        .to_owned();
    let client = reqwest::Client::new();
    let slow = |key: &'static str| {
        client
            .post(&url)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "slow_compute")
            .body(
                json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
                    "name":"slow_compute","arguments":{"seconds":60},
                    "_meta":{"io.modelcontextprotocol/protocolVersion":MODERN,
                        "io.modelcontextprotocol/clientCapabilities": with_tasks()}}})
                .to_string(),
            )
            .send()
    };
    let mut results = Vec::new();
    for key in [KEY, KEY, KEY, OTHER_KEY] {
        let reply: Value = slow(key).await.expect("reply").json().await.expect("json");
        results.push(reply["result"].clone());
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(results[0]["resultType"], "task", "{results:?}");
    assert_eq!(results[1]["resultType"], "task");
    assert_eq!(
        results[2]["isError"], true,
        "a third unfinished task: {}",
        results[2]
    );
    assert_eq!(
        results[3]["resultType"], "task",
        "another key has its own cap"
    );
}
