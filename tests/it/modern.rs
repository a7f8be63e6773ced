//! The 2026-07-28 revision: stateless requests, `server/discover`, header checks, statuses.

use axum::http::StatusCode;
use secure_mcp_server::mcp::dispatch::McpServer;
use secure_mcp_server::tools::registry::{
    Tool, ToolContext, ToolDefinition, ToolFuture, ToolOutput, ToolRegistry,
};
use serde_json::{Map, Value, json};

use crate::support::{Harness, KEY, MODERN};

#[tokio::test]
async fn discover_names_versions_capabilities_and_server_info() {
    let h = Harness::new();
    let r = h.modern("server/discover", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let result = &r.json()["result"];
    assert_eq!(result["resultType"], "complete");
    let versions = result["supportedVersions"].as_array().expect("versions");
    for v in ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"] {
        assert!(versions.iter().any(|x| x == v), "{v}");
    }
    assert!(result["capabilities"]["tools"].is_object());
    assert!(result["capabilities"]["resources"].is_object());
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "secure-mcp-server"
    );
    assert!(result["ttlMs"].as_u64().is_some());
    assert!(matches!(
        result["cacheScope"].as_str(),
        Some("public" | "private")
    ));
    assert!(
        r.header("mcp-session-id").is_none(),
        "2026-07-28 never mints a session"
    );
}

#[tokio::test]
async fn list_and_read_results_carry_result_type_and_cache_fields() {
    let h = Harness::new();
    for (method, params) in [
        ("tools/list", json!({})),
        ("resources/list", json!({})),
        ("resources/templates/list", json!({})),
        ("resources/read", json!({"uri": "file:///data/hello.txt"})),
    ] {
        let r = h.modern(method, params).await;
        assert_eq!(r.status, StatusCode::OK, "{method}: {}", r.text);
        let result = &r.json()["result"];
        assert_eq!(result["resultType"], "complete", "{method}");
        assert!(result["ttlMs"].as_u64().is_some(), "{method}");
        assert!(result["cacheScope"].is_string(), "{method}");
    }
    let call = h
        .call_tool("stat_path", json!({"path": "data/hello.txt"}))
        .await;
    assert_eq!(call["resultType"], "complete");
}

#[tokio::test]
async fn tools_list_names_every_tool_with_schema_and_annotations() {
    let h = Harness::new();
    let r = h.modern("tools/list", json!({})).await;
    let tools = r.json()["result"]["tools"]
        .as_array()
        .expect("tools")
        .clone();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "read_file",
            "list_directory",
            "stat_path",
            "search_files",
            "system_info"
        ]
    );
    for t in &tools {
        assert_eq!(t["inputSchema"]["type"], "object");
        assert_eq!(t["annotations"]["readOnlyHint"], true);
        assert!(t["description"].is_string());
    }
    let again = h.modern("tools/list", json!({})).await;
    assert_eq!(
        again.json()["result"]["tools"],
        Value::Array(tools),
        "deterministic order"
    );
}

#[tokio::test]
async fn missing_meta_fields_are_400_invalid_params() {
    let h = Harness::new();
    let body = |params: Value| {
        json!({"jsonrpc":"2.0","id":7,"method":"server/discover","params":params}).to_string()
    };
    let auth = format!("Bearer {KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "server/discover"),
    ];
    for params in [
        json!({}),
        json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}}),
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}),
    ] {
        let r = h.post_raw(&headers, body(params.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{params}");
        assert_eq!(r.code(), -32602);
        assert_eq!(r.json()["id"], 7, "errors echo the request id");
    }
    // clientInfo is optional
    let ok = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}});
    assert_eq!(h.post_raw(&headers, body(ok)).await.status, StatusCode::OK);
}

async fn with_versions(h: &Harness, header: Option<&str>, meta: &str) -> crate::support::Reply {
    let auth = format!("Bearer {KEY}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("mcp-method", "server/discover"),
    ];
    if let Some(v) = header {
        headers.push(("mcp-protocol-version", v));
    }
    let body = json!({"jsonrpc":"2.0","id":"v","method":"server/discover","params":{"_meta":{
        "io.modelcontextprotocol/protocolVersion": meta,
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    h.post_raw(&headers, body.to_string()).await
}

#[tokio::test]
async fn unsupported_version_is_400_with_supported_and_requested() {
    let h = Harness::new();
    let r = with_versions(&h, Some("v999.0.0"), "v999.0.0").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), -32022);
    let data = &r.json()["error"]["data"];
    assert_eq!(data["requested"], "v999.0.0");
    assert!(
        data["supported"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == MODERN))
    );
    assert_eq!(r.json()["id"], "v");
}

#[tokio::test]
async fn version_header_must_match_meta() {
    let h = Harness::new();
    let r = with_versions(&h, Some(MODERN), "v999.0.0").await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, -32020));
    let r = with_versions(&h, None, MODERN).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, -32020),
        "header required"
    );
}

/// A method, its params, and header overrides (`None` removes a header).
type HeaderCase<'a> = (&'a str, Value, &'a [(&'a str, Option<&'a str>)]);

#[tokio::test]
async fn mcp_method_and_name_headers_must_match_the_body() {
    let h = Harness::new();
    let list = json!({});
    let cases: [HeaderCase; 6] = [
        ("tools/list", list.clone(), &[("mcp-method", None)]),
        (
            "tools/list",
            list.clone(),
            &[("mcp-method", Some("tools/call"))],
        ),
        (
            "tools/list",
            list.clone(),
            &[("mcp-method", Some("TOOLS/LIST"))],
        ),
        (
            "tools/call",
            json!({"name": "system_info"}),
            &[("mcp-name", None)],
        ),
        (
            "tools/call",
            json!({"name": "system_info"}),
            &[("mcp-name", Some("read_file"))],
        ),
        (
            "resources/read",
            json!({"uri": "file:///data/hello.txt"}),
            &[("mcp-name", Some("file:///data/other"))],
        ),
    ];
    for (method, params, overrides) in cases {
        let r = h.modern_with(method, params, overrides).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, -32020),
            "{method} {overrides:?}"
        );
    }
    // accepted variants: whitespace, header-name case, Base64-wrapped name
    let ok: [HeaderCase; 3] = [
        (
            "tools/list",
            list.clone(),
            &[("mcp-method", Some("  tools/list "))],
        ),
        (
            "tools/list",
            list.clone(),
            &[("mcp-method", None), ("MCP-METHOD", Some("tools/list"))],
        ),
        (
            "tools/call",
            json!({"name": "system_info"}),
            &[("mcp-name", Some("=?base64?c3lzdGVtX2luZm8=?="))],
        ),
    ];
    for (method, params, overrides) in ok {
        let r = h.modern_with(method, params, overrides).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{method} {overrides:?}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn removed_and_unknown_methods_are_404_method_not_found() {
    let h = Harness::new();
    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "unknown/method",
        "prompts/list",
    ] {
        let r = h.modern(method, json!({})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(r.code(), -32601, "{method}");
        assert_eq!(r.json()["id"], 1);
    }
}

#[tokio::test]
async fn unknown_tool_and_bad_arguments_shape_are_invalid_params() {
    let h = Harness::new();
    let r = h
        .modern("tools/call", json!({"name": "no_such_tool"}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::OK, -32602));
    let r = h
        .modern(
            "tools/call",
            json!({"name": "read_file", "arguments": "data/hello.txt"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::OK, -32602));
}

#[tokio::test]
async fn schema_invalid_arguments_are_tool_errors_naming_the_violation() {
    let h = Harness::new();
    let cases = [
        (json!({}), "path"),
        (json!({"path": 42}), "/path"),
        (json!({"path": "data/hello.txt", "offset": -1}), "/offset"),
        (json!({"path": "data/hello.txt", "length": 0}), "/length"),
        (json!({"path": "data/hello.txt", "mode": "w"}), "mode"),
    ];
    for (args, needle) in cases {
        let result = h.call_tool("read_file", args.clone()).await;
        assert_eq!(result["isError"], true, "{args}");
        assert_eq!(result["resultType"], "complete");
        let text = crate::support::first_text(&result);
        assert!(
            text.contains("Invalid arguments") && text.contains(needle),
            "{args}: {text}"
        );
    }
    let result = h.call_tool("system_info", json!({"unexpected": 1})).await;
    assert_eq!(result["isError"], true);
}

#[tokio::test]
async fn resource_not_found_is_invalid_params_with_the_uri() {
    let h = Harness::new();
    for uri in [
        "file:///data/missing.txt",
        "file:///etc/passwd",
        "file:///data/link-out",
        "https://example.com/x",
    ] {
        let r = h.modern("resources/read", json!({"uri": uri})).await;
        assert_eq!(r.code(), -32602, "{uri}");
        assert_eq!(r.json()["error"]["data"]["uri"], uri);
    }
}

#[tokio::test]
async fn invalid_cursors_are_invalid_params() {
    let h = Harness::new();
    for method in ["resources/list", "tools/list"] {
        let r = h
            .modern(method, json!({"cursor": "!!not-a-cursor!!"}))
            .await;
        assert_eq!(r.code(), -32602, "{method}");
    }
}

#[tokio::test]
async fn notifications_are_accepted_with_202_and_responses_refused() {
    let h = Harness::new();
    let auth = format!("Bearer {KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("mcp-protocol-version", MODERN),
    ];
    let note = json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":MODERN}}});
    let r = h.post_raw(&headers, note.to_string()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.text.is_empty());
    let response = json!({"jsonrpc":"2.0","id":3,"result":{}});
    let r = h.post_raw(&headers, response.to_string()).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, -32600));
}

#[tokio::test]
async fn session_ids_are_ignored_in_2026() {
    let h = Harness::new();
    let r = h
        .modern_with(
            "tools/list",
            json!({}),
            &[("mcp-session-id", Some("made-up"))],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("mcp-session-id").is_none());
}

/// A tool that needs the client's `sampling` capability, registered through the public API.
struct NeedsSampling;

impl Tool for NeedsSampling {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "needs_sampling",
            title: "Needs sampling",
            description: "Requires the sampling capability",
            input_schema: json!({"type": "object"}),
            read_only: true,
            requires_client: &["sampling"],
        }
    }
    fn call(&self, _arguments: Map<String, Value>, _ctx: ToolContext) -> ToolFuture {
        Box::pin(async { Ok(ToolOutput::text("sampled")) })
    }
}

#[tokio::test]
async fn a_missing_client_capability_is_400_with_the_required_capabilities() {
    let mut tools = ToolRegistry::new();
    tools.register(NeedsSampling);
    let base = Harness::new();
    let state = base.state.clone();
    let state = state.with_server(McpServer::new(tools, Default::default()));
    let h = Harness::from_state(state);
    let call = json!({"name": "needs_sampling"});
    let r = h
        .modern_full("tools/call", call.clone(), json!({}), &[])
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, -32021));
    assert_eq!(
        r.json()["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    let r = h
        .modern_full("tools/call", call, json!({"sampling": {}}), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["result"]["content"][0]["text"], "sampled");
}
