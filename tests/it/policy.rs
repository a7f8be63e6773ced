//! Per-key policy (`--policy`): least privilege per key, a budget per key that no address
//! rotation escapes, limits on single tools, reloads, and what does not count.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{Harness, KEY, MODERN, OTHER_KEY, Reply, RunningServer};

/// A harness whose policy file is `text` (the file stays writable for reloads).
fn with_policy(text: &str) -> (Harness, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, text).expect("write");
    let arg = path.to_string_lossy().into_owned();
    (Harness::with_args(&["--policy", &arg]), dir, path)
}

/// Re-reads the policy file as SIGHUP does.
fn reload(h: &Harness) {
    let keys = h.state.keys.clone();
    h.state
        .policies
        .reload(|id| keys.knows(id))
        .expect("a sound policy");
}

/// A 2026-07-28 request with `key`, from `peer`.
async fn modern_as(h: &Harness, key: &str, peer: [u8; 4], method: &str, params: Value) -> Reply {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut b = Request::post("/mcp")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        b = b.header("mcp-name", name);
    }
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let mut request = b.body(Body::from(body.to_string())).expect("request");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::from((peer, 40000))));
    h.send(request).await
}

fn tool_names(reply: &Reply) -> Vec<String> {
    reply.json()["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect()
}

fn legacy_tool_names(reply: &Reply) -> Vec<String> {
    tool_names(reply)
}

/// The reply without its request id, to compare two error answers.
fn without_id(reply: &Reply) -> (StatusCode, Value) {
    let mut body = reply.json();
    body.as_object_mut().map(|b| b.remove("id"));
    (reply.status, body)
}

#[tokio::test]
async fn a_key_limited_to_read_file_sees_one_tool_and_the_others_are_unknown_in_both_eras() {
    let (h, _dir, _) = with_policy("[keys.cli-1]\ntools = [\"read_file\"]\n");
    let local = [127, 0, 0, 1];
    let mine = modern_as(&h, KEY, local, "tools/list", json!({})).await;
    assert_eq!(tool_names(&mine), ["read_file"]);
    assert_eq!(mine.json()["result"]["cacheScope"], "private");
    let other = modern_as(&h, OTHER_KEY, local, "tools/list", json!({})).await;
    assert!(tool_names(&other).len() > 1, "another key sees every tool");
    let hidden = json!({ "name": "stat_path", "arguments": { "path": "/" } });
    let denied = modern_as(&h, KEY, local, "tools/call", hidden.clone()).await;
    let missing = json!({ "name": "no_such_tool", "arguments": {} });
    let unknown = modern_as(&h, KEY, local, "tools/call", missing).await;
    assert_eq!(
        without_id(&denied),
        without_id(&unknown),
        "indistinguishable"
    );
    let allowed = modern_as(&h, OTHER_KEY, local, "tools/call", hidden).await;
    assert_eq!(allowed.json()["result"]["isError"], false);

    // the 2025 eras: the same list, the same answer
    let session = h.initialize(KEY, "2025-06-18").await;
    let list = h
        .legacy(
            KEY,
            Some(&session),
            json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
        )
        .await;
    assert_eq!(legacy_tool_names(&list), ["read_file"]);
    let call = |name: &str| {
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call",
            "params":{"name": name, "arguments": {"path": "/"}}})
    };
    let denied = h.legacy(KEY, Some(&session), call("list_directory")).await;
    let unknown = h.legacy(KEY, Some(&session), call("no_such_tool")).await;
    assert_eq!(without_id(&denied), without_id(&unknown));
    assert!(
        h.state
            .observability
            .metrics
            .render()
            .contains("denied_tool"),
        "the decision is counted"
    );
}

#[tokio::test]
async fn resources_and_completion_follow_the_resources_rule() {
    let (h, _dir, _) = with_policy("[keys.cli-1]\nresources = false\n");
    let local = [127, 0, 0, 1];
    for method in ["resources/list", "resources/templates/list"] {
        let refused = modern_as(&h, KEY, local, method, json!({})).await;
        assert_eq!(refused.code(), -32601, "{method}: {}", refused.text);
        let other = modern_as(&h, OTHER_KEY, local, method, json!({})).await;
        assert!(other.json().get("result").is_some(), "{method}");
    }
    // on a listen stream, the key hears nothing about resources
    let acknowledged = |key: &'static str| {
        let h = &h;
        async move {
            let body = json!({"jsonrpc":"2.0","id":9,"method":"subscriptions/listen","params":{
                "notifications": {"resourcesListChanged": true,
                    "resourceSubscriptions": ["file:///data/hello.txt"]},
                "_meta":{"io.modelcontextprotocol/protocolVersion": MODERN,
                    "io.modelcontextprotocol/clientCapabilities":{}}}});
            let request = Request::post("/mcp")
                .header("host", "127.0.0.1:8080")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .header("accept", "text/event-stream")
                .header("mcp-protocol-version", MODERN)
                .header("mcp-method", "subscriptions/listen")
                .body(Body::from(body.to_string()))
                .expect("request");
            let response = send_unread(h, request).await;
            let mut body = response.into_body().into_data_stream();
            let first = futures_util::StreamExt::next(&mut body)
                .await
                .expect("an event")
                .expect("bytes");
            let text = String::from_utf8_lossy(&first).into_owned();
            let data = text
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data")
                .to_owned();
            serde_json::from_str::<Value>(&data).expect("json")["params"]["notifications"].clone()
        }
    };
    assert_eq!(acknowledged(KEY).await, json!({}));
    let other = acknowledged(OTHER_KEY).await;
    assert_eq!(other["resourcesListChanged"], true, "{other}");
}

#[tokio::test(start_paused = true)]
async fn a_key_budget_holds_across_many_client_addresses() {
    let (h, _dir, _) = with_policy("[keys.cli-1]\nrate_limit = \"5/60s\"\n");
    let mut accepted = 0;
    for i in 0..30u8 {
        let reply = modern_as(&h, KEY, [10, 0, 0, i], "tools/list", json!({})).await;
        match reply.status {
            StatusCode::OK => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(
                    reply.header("ratelimit-policy"),
                    Some("\"default\";q=5;w=60"),
                    "the key's own policy"
                );
                assert!(reply.header("retry-after").is_some());
            }
            other => panic!("{other}: {}", reply.text),
        }
    }
    assert_eq!(
        accepted, 5,
        "at most the key's budget, whatever the address"
    );
    let other = modern_as(&h, OTHER_KEY, [10, 0, 0, 1], "tools/list", json!({})).await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "another key has its own budget"
    );
    // the sliding window may hold a client up to one sub-bucket (W/10) past the window
    tokio::time::advance(Duration::from_secs(67)).await;
    let later = modern_as(&h, KEY, [10, 0, 1, 1], "tools/list", json!({})).await;
    assert_eq!(later.status, StatusCode::OK, "the next window");
    assert!(
        h.state
            .observability
            .metrics
            .render()
            .contains("key_rate_limited")
    );
}

#[tokio::test(start_paused = true)]
async fn a_tool_limit_holds_while_other_tools_stay_available() {
    let (h, _dir, _) = with_policy("[keys.cli-1.tool_limits]\nstat_path = \"2/60s\"\n");
    let local = [127, 0, 0, 1];
    let stat = json!({ "name": "stat_path", "arguments": { "path": "/" } });
    for _ in 0..2 {
        let ok = modern_as(&h, KEY, local, "tools/call", stat.clone()).await;
        assert_eq!(ok.json()["result"]["isError"], false, "{}", ok.text);
    }
    let limited = modern_as(&h, KEY, local, "tools/call", stat.clone()).await;
    assert_eq!(limited.status, StatusCode::OK);
    let result = &limited.json()["result"];
    assert_eq!(result["isError"], true);
    let text = result["content"][0]["text"].as_str().expect("text");
    assert!(text.contains("retry in"), "{text}");
    let list = json!({ "name": "list_directory", "arguments": { "path": "/" } });
    let other_tool = modern_as(&h, KEY, local, "tools/call", list).await;
    assert_eq!(other_tool.json()["result"]["isError"], false);
    let other_key = modern_as(&h, OTHER_KEY, local, "tools/call", stat).await;
    assert_eq!(other_key.json()["result"]["isError"], false);
    assert!(
        h.state
            .observability
            .metrics
            .render()
            .contains("tool_rate_limited")
    );
}

#[tokio::test]
async fn a_reload_that_narrows_a_key_applies_to_its_next_request_open_sessions_included() {
    let (h, _dir, path) = with_policy("[defaults]\n");
    let session = h.initialize(KEY, "2025-11-25").await;
    let list = || json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let before = h.legacy(KEY, Some(&session), list()).await;
    assert!(legacy_tool_names(&before).len() > 1);
    std::fs::write(&path, "[keys.cli-1]\ntools = [\"read_*\"]\n").expect("write");
    reload(&h);
    let after = h.legacy(KEY, Some(&session), list()).await;
    assert_eq!(legacy_tool_names(&after), ["read_file"]);
    let modern = h.modern("tools/list", json!({})).await;
    assert_eq!(tool_names(&modern), ["read_file"]);
}

#[tokio::test]
async fn a_broken_reload_fails_closed_for_the_keys_it_named() {
    let (h, _dir, path) = with_policy("[keys.cli-1]\ntools = [\"read_file\"]\n");
    std::fs::write(&path, "[keys.cli-1\n").expect("write");
    let keys = h.state.keys.clone();
    assert!(h.state.policies.reload(|id| keys.knows(id)).is_err());
    let mine = h.modern("tools/list", json!({})).await;
    assert!(tool_names(&mine).is_empty(), "the named key is denied");
    let other = modern_as(&h, OTHER_KEY, [127, 0, 0, 1], "tools/list", json!({})).await;
    assert!(
        tool_names(&other).len() > 1,
        "keys it did not name keep the defaults"
    );
}

#[tokio::test(start_paused = true)]
async fn streams_and_answers_to_the_server_do_not_consume_the_budget() {
    let (h, _dir, _) = with_policy("[keys.cli-1]\nrate_limit = \"4/60s\"\n");
    // initialize and notifications/initialized: two
    let session = h.initialize(KEY, "2025-11-25").await;
    // answers to server-to-client requests: none
    for id in 0..10 {
        let answer = json!({"jsonrpc":"2.0","id": format!("s-{id}"),"result":{}});
        let reply = h.legacy(KEY, Some(&session), answer).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    // a GET that opens the session's stream: one, however long it stays open
    let stream = open_stream(&h, KEY, &session).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let ping = json!({"jsonrpc":"2.0","id":5,"method":"ping"});
    let fourth = h.legacy(KEY, Some(&session), ping.clone()).await;
    assert_eq!(fourth.status, StatusCode::OK, "{}", fourth.text);
    let fifth = h.legacy(KEY, Some(&session), ping).await;
    assert_eq!(fifth.status, StatusCode::TOO_MANY_REQUESTS);
    drop(stream);
}

/// The tool names a running server lists for `key`.
async fn listed_by(server: &RunningServer, client: &reqwest::Client, key: &str) -> Vec<String> {
    let reply = post_modern(server, client, key, "tools/list", json!({})).await;
    reply["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// A 2026-07-28 request to a running server, with `key`; the JSON answer.
async fn post_modern(
    server: &RunningServer,
    client: &reqwest::Client,
    key: &str,
    method: &str,
    mut params: Value,
) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut request = client
        .post(server.url())
        .bearer_auth(key)
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        request = request.header("mcp-name", name);
    }
    request
        .json(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn sighup_rereads_the_policy_of_the_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "[defaults]\n").expect("write");
    let arg = path.to_string_lossy().into_owned();
    let server = RunningServer::start(&["--api-key", KEY, "--policy", &arg], &[]);
    let client = reqwest::Client::new();
    assert_eq!(listed_by(&server, &client, KEY).await, ["system_info"]);
    let mut listen = client
        .post(server.url())
        .bearer_auth(KEY)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "subscriptions/listen")
        .json(
            &json!({"jsonrpc":"2.0","id":9,"method":"subscriptions/listen","params":{
            "notifications": {"toolsListChanged": true},
            "_meta":{"io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities":{}}}}),
        )
        .send()
        .await
        .expect("listen");
    assert_eq!(listen.status(), 200);
    std::fs::write(&path, "[keys.cli-1]\ntools = []\n").expect("write");
    server.signal("HUP");
    let mut seen = String::new();
    let announced = tokio::time::timeout(Duration::from_secs(3), async {
        while let Ok(Some(chunk)) = listen.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(announced, Ok(true), "the listener is told: {seen}");
    let mut narrowed = false;
    for _ in 0..40 {
        if listed_by(&server, &client, KEY).await.is_empty() {
            narrowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(narrowed, "the reloaded policy is in force");
}

#[tokio::test]
async fn the_audit_names_the_policy_decision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[keys.cli-1]\ntools = []\n").expect("write");
    let audit = dir.path().join("audit.log");
    let (policy_arg, audit_arg) = (
        policy.to_string_lossy().into_owned(),
        audit.to_string_lossy().into_owned(),
    );
    let server = RunningServer::start(
        &[
            "--api-key",
            KEY,
            "--policy",
            &policy_arg,
            "--audit-log",
            &audit_arg,
        ],
        &[],
    );
    let call = json!({ "name": "system_info", "arguments": {} });
    let reply = post_modern(&server, &reqwest::Client::new(), KEY, "tools/call", call).await;
    assert_eq!(reply["error"]["message"], "Invalid params: unknown tool");
    let mut decided = None;
    for _ in 0..40 {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        decided = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["mcp_method"] == "tools/call");
        if decided.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let event = decided.expect("the call was audited");
    assert_eq!(event["policy"], "denied_tool");
    assert_eq!(event["key_id"], "cli-1");
}

/// `request` from a loopback client, its response unread (streams stay open).
async fn send_unread(h: &Harness, mut request: Request<Body>) -> axum::response::Response {
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    tower::ServiceExt::oneshot(h.app.clone(), request)
        .await
        .expect("infallible")
}

/// A GET that opens `session`'s event stream with `key`.
async fn open_stream(h: &Harness, key: &str, session: &str) -> axum::response::Response {
    let get = Request::get("/mcp")
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("host", "127.0.0.1:8080")
        .body(Body::empty())
        .expect("request");
    send_unread(h, get).await
}

#[tokio::test]
async fn a_keys_max_sessions_and_max_streams_replace_the_server_wide_caps() {
    let (h, _dir, _) = with_policy("[keys.cli-1]\nmax_sessions = 2\nmax_streams = 1\n");
    let first = h.initialize(KEY, "2025-11-25").await;
    let second = h.initialize(KEY, "2025-11-25").await;
    let third = h
        .legacy(
            KEY,
            None,
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name":"it","version":"1"}}}),
        )
        .await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        third.text
    );
    assert!(third.header("mcp-session-id").is_none());
    // The other key keeps the server-wide cap.
    h.initialize(OTHER_KEY, "2025-11-25").await;
    h.initialize(OTHER_KEY, "2025-11-25").await;
    h.initialize(OTHER_KEY, "2025-11-25").await;

    let held = open_stream(&h, KEY, &first).await;
    assert_eq!(held.status(), StatusCode::OK);
    let refused = open_stream(&h, KEY, &second).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(held);
    let again = open_stream(&h, KEY, &second).await;
    assert_eq!(again.status(), StatusCode::OK, "the slot is returned");
}
