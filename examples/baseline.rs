//! The benchmark's baseline: a minimal axum server that parses the same JSON-RPC body as the
//! real server and returns a fixed result, with no security layer at all. `bench/run.sh`
//! reports every figure of the real server as a ratio to this one.
//!
//! The fixed result is read from `RESULT_FILE` when one is given: the benchmark passes the real
//! server's `tools/list` result, so both servers put the same bytes on the wire and the ratio
//! measures the stack, not the payload. It is parsed once at start and copied into every
//! response, the least a handler can do.
//!
//! Usage: `cargo run --release --example baseline -- [ADDR] [RESULT_FILE]` (default address
//! 127.0.0.1:0, printed on stdout; default result a one-tool list).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

async fn mcp(State(result): State<Arc<str>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let id = serde_json::to_string(&request["id"]).unwrap_or_else(|_| "null".into());
    let mut message = Vec::with_capacity(result.len() + id.len() + 32);
    message.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    message.extend_from_slice(id.as_bytes());
    message.extend_from_slice(b",\"result\":");
    message.extend_from_slice(result.as_bytes());
    message.push(b'}');
    ([(header::CONTENT_TYPE, "application/json")], message).into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let result = match args.next() {
        Some(path) => std::fs::read_to_string(path)?,
        None => {
            r#"{"tools":[{"name":"echo","description":"fixed","inputSchema":{"type":"object"}}]}"#
                .into()
        }
    };
    serde_json::from_str::<Value>(&result)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let result: Arc<str> = Arc::from(result.trim());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    axum::serve(
        listener,
        Router::new().route("/mcp", post(mcp)).with_state(result),
    )
    .await
}
