//! Streams: SSE responses with progress and logs, cancellation in both eras, server-to-client
//! requests, the 2025 GET stream with resumption, and 2026-07-28 `subscriptions/listen`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use secure_mcp_server::app::Limits;
use secure_mcp_server::mcp::dispatch::McpServerBuilder;
use secure_mcp_server::mcp::events::{Change, LogLevel};
use secure_mcp_server::server::serve;
use secure_mcp_server::tools::registry::{
    Tool, ToolContext, ToolDefinition, ToolFuture, ToolOutput, ToolRegistry,
};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::support::{Harness, KEY};

/// Sets its flag when dropped: shows that a tool's future was dropped (cancelled).
struct DropFlag(Arc<AtomicBool>, Arc<Notify>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        self.1.notify_waiters();
    }
}

#[derive(Clone, Default)]
struct Probe {
    started: Arc<Notify>,
    dropped: Arc<AtomicBool>,
    dropped_notify: Arc<Notify>,
}

/// Works until cancelled: `slow` reports progress first, `quiet` emits nothing.
struct Slow {
    probe: Probe,
    quiet: bool,
}

impl Tool for Slow {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: if self.quiet { "quiet" } else { "slow" },
            title: "Slow",
            description: "Works until cancelled",
            input_schema: json!({"type": "object"}),
            read_only: true,
            requires_client: &[],
        }
    }
    fn call(&self, _arguments: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        let (probe, quiet) = (self.probe.clone(), self.quiet);
        Box::pin(async move {
            let _flag = DropFlag(probe.dropped.clone(), probe.dropped_notify.clone());
            if !quiet {
                ctx.progress(1.0, Some(2.0), Some("started")).await;
            }
            probe.started.notify_waiters();
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(ToolOutput::text("never"))
        })
    }
}

struct Chatty;

impl Tool for Chatty {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "chatty",
            title: "Chatty",
            description: "Progress and logs, then a result",
            input_schema: json!({"type": "object"}),
            read_only: true,
            requires_client: &[],
        }
    }
    fn call(&self, _arguments: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        Box::pin(async move {
            for p in [10.0, 20.0, 30.0] {
                ctx.progress(p, Some(30.0), None).await;
            }
            ctx.log(LogLevel::Debug, "chatty", json!("debug detail"))
                .await;
            ctx.log(LogLevel::Warning, "chatty", json!("a warning"))
                .await;
            ctx.changes.announce(Change::ToolsListChanged);
            Ok(ToolOutput::text("done"))
        })
    }
}

struct AsksUser;

impl Tool for AsksUser {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "asks_user",
            title: "Asks the user",
            description: "Elicits a name",
            input_schema: json!({"type": "object"}),
            read_only: true,
            requires_client: &[],
        }
    }
    fn call(&self, _arguments: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        Box::pin(async move {
            let answer = ctx
                .ask_client(
                    "elicitation/create",
                    json!({"message": "name?", "requestedSchema": {"type": "object"}}),
                )
                .await?;
            Ok(ToolOutput::text(format!(
                "hello {}",
                answer["content"]["name"].as_str().unwrap_or("?")
            )))
        })
    }
}

fn harness(probe: &Probe) -> Harness {
    let base = Harness::new();
    let state = base.state.clone();
    let mut tools = ToolRegistry::new();
    tools
        .register(Slow {
            probe: probe.clone(),
            quiet: false,
        })
        .register(Chatty)
        .register(AsksUser)
        .register(Slow {
            probe: probe.clone(),
            quiet: true,
        });
    let state = state.with_server(
        McpServerBuilder {
            tools: std::sync::Arc::new(tools),
            list_changed: true,
            ..McpServerBuilder::default()
        }
        .build(),
    );
    Harness::from_state(state)
}

/// The JSON-RPC messages of an SSE body.
fn messages(sse: &str) -> Vec<Value> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_json::from_str(d).expect("json"))
        .collect()
}

#[tokio::test]
async fn progress_and_logs_stream_before_the_result_when_the_client_accepts_sse() {
    let h = harness(&Probe::default());
    let params = json!({"name": "chatty", "_meta": {"progressToken": "p1", "io.modelcontextprotocol/logLevel": "info"}});
    let r = h.modern("tools/call", params).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("x-accel-buffering"), Some("no"));
    let msgs = messages(&r.text);
    let progress: Vec<f64> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| {
            assert_eq!(m["params"]["progressToken"], "p1");
            m["params"]["progress"].as_f64().expect("number")
        })
        .collect();
    assert_eq!(progress, [10.0, 20.0, 30.0]);
    let logs: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .collect();
    assert_eq!(
        logs.len(),
        1,
        "only messages at or above the requested level"
    );
    assert_eq!(logs[0]["params"]["level"], "warning");
    let last = msgs.last().expect("result");
    assert_eq!(last["id"], 1);
    assert_eq!(last["result"]["content"][0]["text"], "done");
    assert_eq!(last["result"]["resultType"], "complete");
}

#[tokio::test]
async fn without_a_progress_token_or_log_level_the_answer_is_plain_json() {
    let h = harness(&Probe::default());
    let r = h.modern("tools/call", json!({"name": "chatty"})).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["result"]["content"][0]["text"], "done");
}

#[tokio::test]
async fn an_invalid_log_level_is_invalid_params() {
    let h = harness(&Probe::default());
    let r = h
        .modern(
            "tools/call",
            json!({"name": "chatty", "_meta": {"io.modelcontextprotocol/logLevel": "loud"}}),
        )
        .await;
    assert_eq!(r.code(), -32602);
}

/// The harness's state served on a loopback socket (for what only a real connection shows).
async fn serve_on_loopback(h: &Harness) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(
        listener,
        h.state.clone(),
        Limits::default(),
        std::future::pending(),
    ));
    addr
}

/// A 2026 `tools/call` of `tool` that accepts SSE, with a progress token if given.
fn call_over_socket(
    addr: std::net::SocketAddr,
    tool: &str,
    progress: Option<u64>,
) -> reqwest::RequestBuilder {
    let mut meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}});
    if let Some(token) = progress {
        meta["progressToken"] = json!(token);
    }
    reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .bearer_auth(KEY)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "_meta": meta}}))
}

#[tokio::test]
async fn closing_a_2026_stream_cancels_the_tool() {
    let probe = Probe::default();
    let h = harness(&probe);
    let addr = serve_on_loopback(&h).await;
    let dropped = probe.dropped_notify.notified();
    let response = call_over_socket(addr, "slow", Some(1))
        .send()
        .await
        .expect("send");
    let mut body = response.bytes_stream();
    let first = body.next().await.expect("a first event").expect("bytes");
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"));
    assert!(
        !probe.dropped.load(Ordering::SeqCst),
        "the tool is still running"
    );
    drop(body);
    tokio::time::timeout(Duration::from_secs(5), dropped)
        .await
        .expect("the tool's future was dropped");
    assert!(probe.dropped.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_2026_client_that_goes_away_before_any_message_cancels_the_tool() {
    // The handler runs inline in the request's own future until it emits: dropping the
    // connection must still drop the tool's work.
    let probe = Probe::default();
    let h = harness(&probe);
    let addr = serve_on_loopback(&h).await;
    let started = probe.started.notified();
    let dropped = probe.dropped_notify.notified();
    let request = tokio::spawn(call_over_socket(addr, "quiet", None).send());
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the tool started");
    assert!(!probe.dropped.load(Ordering::SeqCst), "still running");
    request.abort();
    tokio::time::timeout(Duration::from_secs(5), dropped)
        .await
        .expect("the tool's future was dropped when the client went away");
    assert!(probe.dropped.load(Ordering::SeqCst));
}

async fn legacy_post(h: &Harness, session: &str, body: Value) -> crate::support::Reply {
    h.legacy(KEY, Some(session), body).await
}

#[tokio::test]
async fn notifications_cancelled_stops_a_2025_request() {
    let probe = Probe::default();
    let h = Arc::new(harness(&probe));
    let s = h.initialize(KEY, "2025-11-25").await;
    let started = probe.started.notified();
    let runner = {
        let (h, s) = (h.clone(), s.clone());
        tokio::spawn(async move {
            legacy_post(&h, &s, json!({"jsonrpc":"2.0","id":"long","method":"tools/call","params":{"name":"slow","_meta":{"progressToken":"t"}}})).await
        })
    };
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the tool started");
    let dropped = probe.dropped_notify.notified();
    let r = legacy_post(&h, &s, json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"long","reason":"user"}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    tokio::time::timeout(Duration::from_secs(5), dropped)
        .await
        .expect("cancelled");
    let reply = tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("ends")
        .expect("task");
    assert!(
        messages(&reply.text)
            .iter()
            .all(|m| m.get("result").is_none()),
        "no result after cancellation: {}",
        reply.text
    );
}

#[tokio::test]
async fn a_2025_server_to_client_request_is_answered_through_a_post() {
    let h = Arc::new(harness(&Probe::default()));
    let s = h
        .initialize_with(KEY, "2025-11-25", json!({"elicitation": {}}))
        .await;
    // The call streams the elicitation request, then waits for the answer.
    let request = Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &s)
        .body(Body::from(
            json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"asks_user"}})
                .to_string(),
        ))
        .expect("req");
    let response = h.app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body().into_data_stream();
    let first = body.next().await.expect("event").expect("bytes");
    let asked = messages(&String::from_utf8_lossy(&first)).remove(0);
    assert_eq!(asked["method"], "elicitation/create");
    let id = asked["id"].clone();
    let r = legacy_post(
        &h,
        &s,
        json!({"jsonrpc":"2.0","id":id,"result":{"action":"accept","content":{"name":"Ada"}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let mut rest = String::new();
    while let Some(chunk) = body.next().await {
        rest.push_str(&String::from_utf8_lossy(&chunk.expect("bytes")));
    }
    let result = messages(&rest).pop().expect("result");
    assert_eq!(result["id"], 9);
    assert_eq!(result["result"]["content"][0]["text"], "hello Ada");
}

#[tokio::test]
async fn a_2025_client_that_declared_no_such_capability_is_never_sent_a_request() {
    let h = harness(&Probe::default());
    let s = h.initialize(KEY, "2025-11-25").await;
    let r = legacy_post(
        &h,
        &s,
        json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"asks_user"}}),
    )
    .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{}",
        r.text
    );
    assert_eq!(r.json()["result"]["isError"], true, "{}", r.text);
    assert!(!r.text.contains("elicitation/create"), "{}", r.text);
}

#[tokio::test]
async fn answers_from_another_session_or_to_unknown_ids_are_ignored() {
    let h = harness(&Probe::default());
    let s = h.initialize(KEY, "2025-11-25").await;
    let r = legacy_post(&h, &s, json!({"jsonrpc":"2.0","id":"s-999","result":{}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

async fn open_stream(h: &Harness, request: Request<Body>) -> axum::body::BodyDataStream {
    let response = h.app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response.into_body().into_data_stream()
}

async fn next_text(stream: &mut axum::body::BodyDataStream) -> String {
    // 30 s: longer than the keep-alive interval, which a paused clock reaches at once
    let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("in time")
        .expect("chunk")
        .expect("bytes");
    String::from_utf8_lossy(&chunk).into_owned()
}

fn get_request(session: &str, last_event: Option<&str>) -> Request<Body> {
    let mut b = Request::get("/mcp")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {KEY}"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session);
    if let Some(id) = last_event {
        b = b.header("last-event-id", id);
    }
    b.body(Body::empty()).expect("req")
}

#[tokio::test]
async fn the_2025_get_stream_primes_delivers_changes_and_resumes_only_its_own_events() {
    let h = harness(&Probe::default());
    let s = h.initialize(KEY, "2025-11-25").await;
    let mut stream = open_stream(&h, get_request(&s, None)).await;
    let priming = next_text(&mut stream).await;
    assert!(
        priming.starts_with("id: ") && priming.contains("retry: "),
        "{priming}"
    );
    // a second GET stream for the same session is refused
    let second = h.send(get_request(&s, None)).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    h.state.server.changes().announce(Change::ToolsListChanged);
    let event = next_text(&mut stream).await;
    assert!(
        event.contains("notifications/tools/list_changed"),
        "{event}"
    );
    let id: u64 = event
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("id")
        .parse()
        .expect("number");
    drop(stream);
    tokio::task::yield_now().await;
    h.state
        .server
        .changes()
        .announce(Change::PromptsListChanged);
    // resuming replays what came after the last seen id, from this session only
    let other = h.initialize(KEY, "2025-11-25").await;
    let mut resumed = open_stream(&h, get_request(&s, Some(&(id - 1).to_string()))).await;
    let replay = next_text(&mut resumed).await;
    assert!(
        replay.contains(&format!("id: {id}")) && replay.contains("tools/list_changed"),
        "{replay}"
    );
    let mut foreign = open_stream(&h, get_request(&other, Some("0"))).await;
    tokio::task::yield_now().await;
    h.state.server.changes().announce(Change::ToolsListChanged);
    let first_foreign = next_text(&mut foreign).await;
    // the first thing the other session sees is its own first live event, not a replay of ours
    assert!(
        first_foreign.starts_with("id: 1\n") && first_foreign.contains("tools/list_changed"),
        "{first_foreign}"
    );
}

#[tokio::test]
async fn get_without_a_session_or_in_2026_is_405() {
    let h = harness(&Probe::default());
    let r = h
        .send(
            Request::get("/mcp")
                .header("authorization", format!("Bearer {KEY}"))
                .header("mcp-protocol-version", "2026-07-28")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn subscriptions_listen_acknowledges_then_sends_only_what_was_asked_for() {
    let h = harness(&Probe::default());
    let body = json!({"jsonrpc":"2.0","id":"sub-1","method":"subscriptions/listen","params":{
        "notifications": {"promptsListChanged": true, "toolsListChanged": true},
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}});
    let request = Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(Body::from(body.to_string()))
        .expect("req");
    let mut stream = open_stream(&h, request).await;
    let ack = messages(&next_text(&mut stream).await).remove(0);
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true}),
        "no prompts here, so not honored"
    );
    h.state
        .server
        .changes()
        .announce(Change::PromptsListChanged);
    h.state.server.changes().announce(Change::ToolsListChanged);
    let next = messages(&next_text(&mut stream).await).remove(0);
    assert_eq!(next["method"], "notifications/tools/list_changed");
    assert_eq!(
        next["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
}

#[tokio::test(start_paused = true)]
async fn long_streams_send_keep_alive_comments() {
    let h = harness(&Probe::default());
    let s = h.initialize(KEY, "2025-06-18").await;
    let mut stream = open_stream(&h, get_request(&s, None)).await;
    let chunk = next_text(&mut stream).await;
    assert_eq!(chunk, ": keep-alive\n\n");
}

#[tokio::test]
async fn on_shutdown_a_listen_stream_ends_with_cancelled_and_its_result() {
    let h = harness(&Probe::default());
    let body = json!({"jsonrpc":"2.0","id":7,"method":"subscriptions/listen","params":{
        "notifications": {"toolsListChanged": true},
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}});
    let request = Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(Body::from(body.to_string()))
        .expect("req");
    let mut stream = open_stream(&h, request).await;
    let _ack = next_text(&mut stream).await;
    h.state.shutdown.cancel();
    let mut rest = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("ends")
    {
        rest.push_str(&String::from_utf8_lossy(&chunk.expect("bytes")));
    }
    let msgs = messages(&rest);
    assert_eq!(msgs.len(), 2, "{rest}");
    assert_eq!(msgs[0]["method"], "notifications/cancelled");
    assert_eq!(msgs[0]["params"]["requestId"], 7);
    assert_eq!(msgs[1]["id"], 7);
    assert_eq!(msgs[1]["result"]["resultType"], "complete");
    assert_eq!(
        msgs[1]["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        7
    );
}

/// A resource source that supports subscriptions.
struct Watched;

impl secure_mcp_server::mcp::resources::ResourceProvider for Watched {
    fn list<'a>(
        &'a self,
        _cursor: Option<&'a str>,
    ) -> secure_mcp_server::mcp::resources::BoxFuture<
        'a,
        Result<secure_mcp_server::mcp::resources::Page, secure_mcp_server::error::RpcError>,
    > {
        Box::pin(async {
            Ok((
                vec![
                    json!({"uri": "test://a", "name": "a"}),
                    json!({"uri": "test://b", "name": "b"}),
                ],
                None,
            ))
        })
    }
    fn read<'a>(
        &'a self,
        uri: &'a str,
    ) -> secure_mcp_server::mcp::resources::BoxFuture<
        'a,
        Result<Option<Vec<Value>>, secure_mcp_server::error::RpcError>,
    > {
        Box::pin(async move { Ok(Some(vec![json!({"uri": uri, "text": "x"})])) })
    }
    fn supports_subscribe(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_2025_session_gets_updates_only_for_the_resources_it_subscribed_to() {
    let base = Harness::new();
    let mut resources = secure_mcp_server::mcp::resources::Resources::default();
    resources.add(Watched);
    let state = base.state.clone().with_server(
        McpServerBuilder {
            resources,
            ..McpServerBuilder::default()
        }
        .build(),
    );
    let h = Harness::from_state(state);
    let s = h.initialize(KEY, "2025-11-25").await;
    let r = h.legacy(KEY, Some(&s), json!({"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"test://a"}})).await;
    assert_eq!(r.json()["result"], json!({}));
    let mut stream = open_stream(&h, get_request(&s, None)).await;
    let _priming = next_text(&mut stream).await;
    h.state
        .server
        .changes()
        .announce(Change::ResourceUpdated("test://b".into()));
    h.state
        .server
        .changes()
        .announce(Change::ResourceUpdated("test://a".into()));
    let event = next_text(&mut stream).await;
    assert!(
        event.contains("notifications/resources/updated") && event.contains("test://a"),
        "{event}"
    );
    assert!(!event.contains("test://b"));
    let r = h.legacy(KEY, Some(&s), json!({"jsonrpc":"2.0","id":2,"method":"resources/unsubscribe","params":{"uri":"test://a"}})).await;
    assert_eq!(r.json()["result"], json!({}));
}
