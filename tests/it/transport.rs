//! Streamable HTTP details shared by both eras: content types, Accept, envelopes, limits,
//! routes, and that no error discloses anything.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::support::{Harness, KEY, OTHER_KEY};

fn auth() -> String {
    format!("Bearer {KEY}")
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let h = Harness::new();
    let a = auth();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut headers = vec![("authorization", a.as_str())];
        if let Some(ct) = ct {
            headers.push(("content-type", ct));
        }
        let r = h
            .post_raw(&headers, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(r.code(), -32600);
    }
}

#[tokio::test]
async fn an_accept_header_naming_neither_type_is_406() {
    let h = Harness::new();
    let a = auth();
    let r = h
        .post_raw(
            &[
                ("authorization", &a),
                ("content-type", "application/json"),
                ("accept", "text/html"),
            ],
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn a_client_accepting_only_sse_gets_an_sse_response() {
    let h = Harness::new();
    let a = auth();
    let r = h
        .post_raw(
            &[("authorization", &a), ("content-type", "application/json"), ("accept", "text/event-stream")],
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("x-accel-buffering"), Some("no"));
    let data = r
        .text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("data line");
    let message: serde_json::Value = serde_json::from_str(data).expect("json");
    assert_eq!(message["result"]["protocolVersion"], "2025-11-25");
    assert!(r.text.ends_with("\n\n"));
}

#[tokio::test]
async fn malformed_bodies_get_400_with_the_right_code() {
    let h = Harness::new();
    let a = auth();
    let headers = [
        ("authorization", a.as_str()),
        ("content-type", "application/json"),
    ];
    let cases = [
        ("{not json", -32700),
        ("", -32700),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, -32600),
        ("[]", -32600),
        (r#""just a string""#, -32600),
        (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, -32600),
        (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, -32600),
        (r#"{"id":1,"method":"ping"}"#, -32600),
    ];
    for (body, code) in cases {
        let r = h.post_raw(&headers, body).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_100000_deep_array_is_a_400_and_the_server_keeps_serving() {
    let h = Harness::with_args(&["--max-body", "400000"]);
    let a = auth();
    let headers = [
        ("authorization", a.as_str()),
        ("content-type", "application/json"),
    ];
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let r = h.post_raw(&headers, deep).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, -32700));
    let r = h.modern("server/discover", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let h = Harness::with_args(&["--max-body", "1024"]);
    let a = auth();
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let r = h
        .post_raw(
            &[("authorization", &a), ("content-type", "application/json")],
            big,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), -32600);
}

#[tokio::test]
async fn get_is_405_with_allow_and_other_methods_too() {
    let h = Harness::new();
    for method in ["GET", "PUT", "PATCH"] {
        let r = h
            .send(
                Request::builder()
                    .method(method)
                    .uri("/mcp")
                    .header("authorization", auth())
                    .body(Body::empty())
                    .expect("req"),
            )
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(r.header("allow"), Some("POST, DELETE"), "{method}");
    }
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let h = Harness::new();
    for path in ["/", "/mcp/extra", "/admin", "/health/../mcp2"] {
        let r = h
            .send(Request::get(path).body(Body::empty()).expect("req"))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
}

/// Every error this server can produce, gathered in one place, must disclose nothing.
#[tokio::test]
async fn no_error_discloses_paths_keys_versions_or_internals() {
    let h = Harness::new();
    let a = auth();
    let root = h.root().to_string_lossy().into_owned();
    let outside = h.outside.path().to_string_lossy().into_owned();
    let mut replies = vec![
        h.post_raw(&[("content-type", "application/json")], "{}")
            .await,
        h.post_raw(
            &[
                ("authorization", "Bearer nope"),
                ("content-type", "application/json"),
            ],
            "{}",
        )
        .await,
        h.post_raw(
            &[("authorization", &a), ("content-type", "application/json")],
            "{bad",
        )
        .await,
        h.post_raw(&[("authorization", &a)], "{}").await,
        h.send(Request::get("/nowhere").body(Body::empty()).expect("req"))
            .await,
        h.modern("resources/read", json!({"uri": "file:///data/link-out"}))
            .await,
        h.modern("resources/read", json!({"uri": "file:///data/fifo"}))
            .await,
        h.modern("tools/call", json!({"name": "no_such"})).await,
        h.modern("nope", json!({})).await,
    ];
    for (tool, path) in [
        ("read_file", "data/link-out"),
        ("read_file", "data/dir-out/secret.txt"),
        ("read_file", "data/../../etc/passwd"),
        ("read_file", "/etc/shadow"),
        ("read_file", "data/fifo"),
        ("read_file", "data/missing"),
        ("list_directory", "data/dir-out"),
        ("stat_path", "data/link-out"),
        ("search_files", "data/hello.txt"),
    ] {
        let mut args = json!({"path": path});
        if tool == "search_files" {
            args["pattern"] = json!("*");
        }
        replies.push(
            h.modern("tools/call", json!({"name": tool, "arguments": args}))
                .await,
        );
    }
    for r in replies {
        // The server's own name and version in `_meta.serverInfo` are protocol, not disclosure.
        let mut body: serde_json::Value = serde_json::from_str(&r.text).expect("json");
        if let Some(result) = body.get_mut("result").and_then(|v| v.as_object_mut()) {
            result.remove("_meta");
        }
        let mut everything = body.to_string();
        for (name, value) in &r.headers {
            everything.push_str(name.as_str());
            everything.push_str(value.to_str().unwrap_or_default());
        }
        for needle in [
            root.as_str(),
            outside.as_str(),
            "/tmp",
            KEY,
            OTHER_KEY,
            "TOP-SECRET",
            "panicked",
            "axum",
            "hyper",
            "serde",
            "tokio",
            "os error",
            "src/",
            "Permission",
            "errno",
        ] {
            assert!(
                !everything.contains(needle),
                "{needle:?} disclosed in {everything}"
            );
        }
        let has_version = everything.as_bytes().windows(5).any(|w| {
            w[0].is_ascii_digit()
                && w[1] == b'.'
                && w[2].is_ascii_digit()
                && w[3] == b'.'
                && w[4].is_ascii_digit()
        });
        assert!(!has_version, "a version number disclosed in {everything}");
        assert!(r.headers.get("server").is_none());
    }
}
