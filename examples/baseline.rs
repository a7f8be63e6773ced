//! The benchmark's baselines: minimal axum servers with no security layer at all.
//! `bench/run.sh` reports every figure of the real server as a ratio to them.
//!
//! - **Idiomatic** (no `RESULT_FILE`): what a bare axum JSON-RPC handler looks like. The body
//!   is taken with axum's `Json<Value>` extractor and the answer, a one-tool `tools/list`
//!   result, built with `json!` and returned as `Json`. This is the headline baseline.
//! - **Same bytes** (`RESULT_FILE` given): the benchmark passes the real server's `tools/list`
//!   result, which is parsed once at start and copied into every response, the least a handler
//!   can do; both servers put the same bytes on the wire, so the ratio measures the stack, not
//!   the payload. The stricter figure.
//!
//! Usage: `cargo run --release --example baseline -- [ADDR] [RESULT_FILE]` (default address
//! 127.0.0.1:0, printed on stdout).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The idiomatic handler: extractor in, `json!` out.
async fn idiomatic(Json(request): Json<Value>) -> Json<Value> {
    Json(json!({
        "jsonrpc": "2.0",
        "id": request["id"],
        "result": {
            "tools": [{
                "name": "echo",
                "description": "Echoes its input back",
                "inputSchema": {
                    "type": "object",
                    "properties": {"message": {"type": "string"}},
                    "required": ["message"]
                }
            }]
        }
    }))
}

/// The same-bytes handler: parses the body, copies the fixed result.
async fn same_bytes(State(result): State<Arc<str>>, body: Bytes) -> Response {
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
    let router = match args.next() {
        Some(path) => {
            let result = std::fs::read_to_string(path)?;
            serde_json::from_str::<Value>(&result)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let result: Arc<str> = Arc::from(result.trim());
            Router::new()
                .route("/mcp", post(same_bytes))
                .with_state(result)
        }
        None => Router::new().route("/mcp", post(idiomatic)),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, router).await
}
