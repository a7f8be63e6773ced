//! The benchmark's baseline: a minimal axum server that parses the same JSON-RPC body as the
//! real server and returns a fixed result, with no security layer at all. `bench/run.sh`
//! reports every figure of the real server as a ratio to this one.
//!
//! Usage: `cargo run --release --example baseline -- [ADDR]` (default 127.0.0.1:0; the address
//! is printed on stdout).

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

async fn mcp(body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let result = json!({ "tools": [{ "name": "echo", "description": "fixed", "inputSchema": { "type": "object" } }] });
    axum::Json(json!({ "jsonrpc": "2.0", "id": request["id"], "result": result })).into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, Router::new().route("/mcp", post(mcp))).await
}
