//! The 2025-era revisions: the `initialize` handshake, version negotiation and legacy statuses.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Harness, KEY};

#[tokio::test]
async fn initialize_negotiates_the_version_and_mints_a_session() {
    let h = Harness::new();
    for (requested, answered) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2026-07-28", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
        ("nonsense", "2025-11-25"),
    ] {
        let r = h
            .legacy(KEY, None, json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
                "protocolVersion": requested, "capabilities": {}, "clientInfo": {"name":"t","version":"1"}}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{requested}: {}", r.text);
        let result = &r.json()["result"];
        assert_eq!(result["protocolVersion"], answered, "{requested}");
        assert_eq!(result["serverInfo"]["name"], "secure-mcp-server");
        assert!(result["capabilities"]["tools"].is_object());
        let session = r.header("mcp-session-id").expect("session");
        assert!(session.len() >= 43 && session.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
}

#[tokio::test]
async fn ping_tools_and_resources_work_in_a_session() {
    let h = Harness::new();
    let s = h.initialize(KEY, "2025-11-25").await;
    let r = h
        .legacy(
            KEY,
            Some(&s),
            json!({"jsonrpc":"2.0","id":2,"method":"ping"}),
        )
        .await;
    assert_eq!(r.json()["result"], json!({}));
    let r = h
        .legacy(
            KEY,
            Some(&s),
            json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}),
        )
        .await;
    assert_eq!(
        r.json()["result"]["tools"].as_array().map(Vec::len),
        Some(5)
    );
    assert!(
        r.json()["result"].get("resultType").is_none(),
        "2025 results keep their 2025 shape"
    );
    let r = h
        .legacy(
            KEY,
            Some(&s),
            json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{
            "name":"read_file","arguments":{"path":"data/hello.txt"}}}),
        )
        .await;
    assert_eq!(r.json()["result"]["content"][0]["text"], "hello world\n");
    let r = h
        .legacy(KEY, Some(&s), json!({"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"file:///data/nope"}}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::OK, -32002),
        "2025 resource-not-found code"
    );
}

#[tokio::test]
async fn unknown_methods_are_method_not_found_with_200() {
    let h = Harness::new();
    let s = h.initialize(KEY, "2025-06-18").await;
    for method in ["server/discover", "prompts/list", "does/not/exist"] {
        let r = h
            .legacy(
                KEY,
                Some(&s),
                json!({"jsonrpc":"2.0","id":"m","method":method}),
            )
            .await;
        assert_eq!((r.status, r.code()), (StatusCode::OK, -32601), "{method}");
        assert_eq!(r.json()["id"], "m");
    }
}

#[tokio::test]
async fn an_unsupported_protocol_version_header_is_400() {
    let h = Harness::new();
    let s = h.initialize(KEY, "2025-11-25").await;
    let auth = format!("Bearer {KEY}");
    for version in ["2024-11-05", "1.0"] {
        let r = h
            .post_raw(
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                    ("mcp-session-id", &s),
                    ("mcp-protocol-version", version),
                ],
                json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{version}");
    }
    // any revision we speak is accepted, even if it differs from the negotiated one
    let r = h
        .post_raw(
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("mcp-session-id", &s),
                ("mcp-protocol-version", "2025-03-26"),
            ],
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn initialize_never_needs_the_version_header() {
    let h = Harness::new();
    let r = h
        .legacy(KEY, None, json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
