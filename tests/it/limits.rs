//! Size, time and connection limits, and panics: the server keeps serving.

use std::time::Duration;

use secure_mcp_server::app::Limits;
use secure_mcp_server::mcp::dispatch::McpServer;
use secure_mcp_server::tools::registry::{
    Tool, ToolContext, ToolDefinition, ToolFuture, ToolRegistry,
};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Harness, KEY, serve_in_process};

async fn start(limits: Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    serve_in_process(&["--api-key", KEY], Some(limits)).await
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let (addr, _stop) = start(Limits {
        header_timeout: Duration::from_secs(5),
        ..Limits::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("write");
    // the paused clock jumps to the header timeout as soon as everything is idle; 20 s is
    // below hyper's own default (30 s), so only the configured timeout can pass this
    let reply = tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut s))
        .await
        .expect("the server must close the connection");
    assert!(!reply.contains("200 OK"), "{reply}");
}

#[tokio::test(start_paused = true)]
async fn a_body_that_never_arrives_gets_408() {
    let (addr, _stop) = start(Limits {
        request_timeout: Duration::from_secs(5),
        ..Limits::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\""
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let reply = tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut s))
        .await
        .expect("the server must answer");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let (addr, _stop) = start(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s); // kept alive: each holds a connection slot
    }
    let mut third = TcpStream::connect(addr).await.expect("connect");
    let _ = third
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let reply = tokio::time::timeout(Duration::from_secs(5), read_to_close(&mut third))
        .await
        .expect("closed");
    assert!(
        reply.is_empty(),
        "the third connection gets nothing: {reply}"
    );
    drop(held);
    // slots free again once the held connections close
    let mut ok = false;
    for _ in 0..50 {
        let client = reqwest::Client::new();
        if let Ok(r) = client.get(format!("http://{addr}/health")).send().await {
            ok = r.status() == 200;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(ok);
}

struct Panics;

impl Tool for Panics {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "panics",
            title: "Panics",
            description: "Always panics",
            input_schema: json!({"type": "object"}),
            read_only: true,
            requires_client: &[],
        }
    }
    fn call(&self, _arguments: Map<String, Value>, _ctx: ToolContext) -> ToolFuture {
        Box::pin(async { panic!("secret internal detail /srv/private") })
    }
}

#[tokio::test]
async fn a_panicking_tool_is_a_generic_500_and_the_server_keeps_serving() {
    let base = Harness::new();
    let state = base.state.clone();
    let mut tools = ToolRegistry::new();
    tools.register(Panics);
    let state = state.with_server(McpServer::new(tools, Default::default()));
    let h = Harness::from_state(state);
    let r = h.modern("tools/call", json!({"name": "panics"})).await;
    assert_eq!(r.status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.code(), -32603);
    assert!(
        !r.text.contains("secret") && !r.text.contains("/srv") && !r.text.contains("panic"),
        "{}",
        r.text
    );
    let r = h.modern("tools/list", json!({})).await;
    assert_eq!(r.status, axum::http::StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_declared_length_over_the_limit_gets_413_before_the_body_arrives() {
    let (addr, _stop) = start(Limits {
        max_body: 1024,
        request_timeout: Duration::from_secs(600),
        ..Limits::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    // far below the request timeout: only the declared length can have answered
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered at once")
        .expect("read");
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
}
