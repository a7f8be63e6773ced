//! Every `/mcp` request needs `Authorization: Bearer <key>`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use secure_mcp_server::security::auth::{Authenticated, KeyId};
use serde_json::json;
use tower::ServiceExt;

use crate::support::{Harness, KEY, OTHER_KEY};

const DISCOVER: &str = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

fn discover_headers(auth: Option<&str>) -> Vec<(&str, &str)> {
    let mut h = vec![
        ("content-type", "application/json"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "server/discover"),
    ];
    if let Some(a) = auth {
        h.push(("authorization", a));
    }
    h
}

#[tokio::test]
async fn missing_key_is_401_with_a_bearer_challenge() {
    let h = Harness::new();
    let r = h.post_raw(&discover_headers(None), DISCOVER).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"mcp\""));
    assert_eq!(r.code(), -32600);
}

#[tokio::test]
async fn wrong_key_is_401_invalid_token() {
    let h = Harness::new();
    for bad in [
        "Bearer wrong-key",
        "Bearer test-key-alpha-0123456789abcdeF",
        "Bearer test-key-alpha-0123456789abcde",
    ] {
        let r = h.post_raw(&discover_headers(Some(bad)), DISCOVER).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"mcp\", error=\"invalid_token\"")
        );
    }
}

#[tokio::test]
async fn wrong_scheme_is_401() {
    let h = Harness::new();
    let basic = format!("Basic {KEY}");
    let token = format!("Token {KEY}");
    for auth in [basic.as_str(), token.as_str(), KEY] {
        let r = h.post_raw(&discover_headers(Some(auth)), DISCOVER).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth}");
    }
}

#[tokio::test]
async fn key_in_query_string_is_not_accepted() {
    let h = Harness::new();
    for uri in [
        format!("/mcp?api_key={KEY}"),
        format!("/mcp?access_token={KEY}"),
        format!("/mcp?key={KEY}"),
    ] {
        let mut b = Request::post(uri.as_str());
        for (k, v) in discover_headers(None) {
            b = b.header(k, v);
        }
        let r = h.send(b.body(Body::from(DISCOVER)).expect("request")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
}

#[tokio::test]
async fn every_configured_key_works() {
    let h = Harness::new();
    for key in [KEY, OTHER_KEY] {
        let auth = format!("Bearer {key}");
        let r = h.post_raw(&discover_headers(Some(&auth)), DISCOVER).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let lower = format!("bearer {KEY}");
    let r = h.post_raw(&discover_headers(Some(&lower)), DISCOVER).await;
    assert_eq!(r.status, StatusCode::OK, "the scheme is case-insensitive");
}

#[tokio::test]
async fn get_and_delete_need_a_key_too() {
    let h = Harness::new();
    let r = h
        .send(Request::get("/mcp").body(Body::empty()).expect("req"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(
            Request::delete("/mcp")
                .header("mcp-session-id", "x")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn health_needs_no_key_and_says_only_ok() {
    let h = Harness::new();
    let r = h
        .send(Request::get("/health").body(Body::empty()).expect("req"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn the_key_id_travels_with_the_response_for_the_audit_log() {
    let h = Harness::new();
    let mut b = Request::post("/mcp").header("host", "localhost");
    let auth = format!("Bearer {OTHER_KEY}");
    for (k, v) in discover_headers(Some(&auth)) {
        b = b.header(k, v);
    }
    let response = h
        .app
        .clone()
        .oneshot(b.body(Body::from(DISCOVER)).expect("req"))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.extensions().get::<Authenticated>(),
        Some(&Authenticated::new(KeyId::for_digest(
            "cli-2",
            &secure_mcp_server::keys::digest(OTHER_KEY)
        )))
    );
}
