//! The full stack on a real loopback socket: what only a socket shows (connect info, keep-alive
//! connection reuse across both eras).

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::support::{KEY, serve_in_process};

async fn start() -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("note.txt"), "over the wire").expect("write");
    let dir_arg = dir.path().to_string_lossy().into_owned();
    let (addr, stop) = serve_in_process(&["--api-key", KEY, "--allow-dir", &dir_arg], None).await;
    (addr, stop, dir)
}

#[tokio::test]
async fn both_eras_work_over_one_kept_alive_connection() {
    let (addr, _stop, dir) = start().await;
    let root_name = dir
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_owned();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let url = format!("http://{addr}/mcp");

    let meta = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}});
    let modern = client
        .post(&url)
        .bearer_auth(KEY)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "read_file")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
            "name":"read_file","arguments":{"path": format!("{root_name}/note.txt")},"_meta": meta}}))
        .send()
        .await
        .expect("send");
    assert_eq!(modern.status(), 200);
    let body: Value = modern.json().await.expect("json");
    assert_eq!(body["result"]["content"][0]["text"], "over the wire");

    let init = client
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}))
        .send()
        .await
        .expect("send");
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for id in 2..5 {
        let r = client
            .post(&url)
            .bearer_auth(KEY)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({"jsonrpc":"2.0","id":id,"method":"ping"}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
    }
    let del = client
        .delete(&url)
        .bearer_auth(KEY)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("send");
    assert_eq!(del.status(), 204);

    let health = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .expect("send");
    assert_eq!(health.status(), 200);
    let unauth = client
        .post(&url)
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(unauth.status(), 401);
}
