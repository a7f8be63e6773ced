//! Origin, Host and CORS from one allow-list (DNS rebinding defence).

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::support::{Harness, KEY, Reply};

const DISCOVER: &str = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

async fn discover(h: &Harness, host: &str, origin: Option<&str>, key: Option<&str>) -> Reply {
    let mut b = Request::post("/mcp")
        .header("host", host)
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "server/discover");
    if let Some(o) = origin {
        b = b.header("origin", o);
    }
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    h.send(b.body(Body::from(DISCOVER)).expect("req")).await
}

#[tokio::test]
async fn every_mcp_method_and_keyed_path_refuses_a_foreign_host() {
    // POST /mcp has its own route past the router (`app::Routes`); the policy holds on both.
    let h = Harness::new();
    for (method, path) in [
        ("POST", "/mcp"),
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("PUT", "/mcp"),
        ("GET", "/health/details"),
        ("GET", "/metrics"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "evil.example.com")
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
            .header("mcp-session-id", "x")
            .body(Body::from(DISCOVER))
            .expect("req");
        let r = h.send(request).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
    }
}

#[tokio::test]
async fn a_foreign_origin_is_403_before_authentication() {
    let h = Harness::new();
    for key in [Some(KEY), None, Some("wrong")] {
        let r = discover(&h, "127.0.0.1:8080", Some("http://evil.example.com"), key).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{key:?}");
        assert!(r.header("www-authenticate").is_none());
    }
    let r = discover(&h, "127.0.0.1:8080", Some("null"), Some(KEY)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_dns_rebinding_host_is_403() {
    let h = Harness::new();
    let r = discover(
        &h,
        "evil.example.com",
        Some("http://evil.example.com"),
        Some(KEY),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = discover(&h, "evil.example.com:8080", None, Some(KEY)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn no_origin_and_loopback_origins_pass_on_a_loopback_server() {
    let h = Harness::new();
    for (host, origin) in [
        ("127.0.0.1:8080", None),
        ("localhost:9999", Some("http://localhost:9999")),
        ("[::1]:8080", Some("http://127.0.0.1:5173")),
    ] {
        let r = discover(&h, host, origin, Some(KEY)).await;
        assert_eq!(r.status, StatusCode::OK, "{host} {origin:?}");
    }
}

#[tokio::test]
async fn configured_origins_and_hosts_replace_the_defaults() {
    let h = Harness::with_args(&[
        "--allow-origin",
        "https://app.example.com",
        "--allow-host",
        "mcp.example.com",
    ]);
    let r = discover(
        &h,
        "mcp.example.com",
        Some("https://app.example.com"),
        Some(KEY),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = discover(
        &h,
        "mcp.example.com",
        Some("http://localhost:3000"),
        Some(KEY),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = discover(&h, "127.0.0.1:8080", None, Some(KEY)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn preflight(h: &Harness, origin: &str) -> Reply {
    h.send(
        Request::options("/mcp")
            .header("host", "mcp.example.com")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-protocol-version, mcp-method",
            )
            .body(Body::empty())
            .expect("req"),
    )
    .await
}

#[tokio::test]
async fn cors_preflights_are_answered_without_a_key_for_allowed_origins_only() {
    let h = Harness::with_args(&[
        "--allow-origin",
        "https://app.example.com",
        "--allow-host",
        "mcp.example.com",
    ]);
    let r = preflight(&h, "https://app.example.com").await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-session-id",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    let r = preflight(&h, "https://evil.example.com").await;
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "never granted to an unlisted origin"
    );

    let r = h
        .send(keyed_discover(Some("https://app.example.com")))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("mcp-session-id") && exposed.contains("www-authenticate"),
        "{exposed}"
    );
    let with_origin = vary(&r);

    // Without `Origin` (a native client) the answer has no CORS grant, and the same `Vary`, so
    // a cache never hands one kind of answer to the other kind of request.
    let r = h.send(keyed_discover(None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("access-control-allow-origin").is_none());
    assert!(with_origin.iter().any(|v| v == "origin"), "{with_origin:?}");
    assert_eq!(vary(&r), with_origin);
}

/// A keyed `server/discover` to `mcp.example.com`, from a page of `origin` if given.
fn keyed_discover(origin: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/mcp")
        .header("host", "mcp.example.com")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "server/discover");
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    req.body(Body::from(DISCOVER)).expect("req")
}

/// The names in every `Vary` header of a reply, sorted.
fn vary(reply: &Reply) -> Vec<String> {
    let mut names: Vec<String> = reply
        .headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn cors_never_answers_with_a_wildcard() {
    let h = Harness::new();
    for origin in ["http://localhost:3000", "https://evil.example.com"] {
        let r = preflight(&h, origin).await;
        assert_ne!(r.header("access-control-allow-origin"), Some("*"));
    }
}

#[tokio::test(start_paused = true)]
async fn preflights_count_against_the_clients_rate_limit() {
    let h = Harness::with_args(&[
        "--allow-origin",
        "https://app.example.com",
        "--rate-limit",
        "3",
    ]);
    for _ in 0..3 {
        assert_eq!(
            preflight(&h, "https://app.example.com").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        preflight(&h, "https://app.example.com").await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a flood of OPTIONS is limited like any other request"
    );
}
