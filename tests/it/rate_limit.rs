//! Rate limiting through the real router (paused clock) and on real sockets.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};

use proptest::prelude::*;
use secure_mcp_server::security::rate_limit::{Decision, Policy, RateLimiter};
use tokio::time::Instant;

use crate::support::{Harness, KEY, Reply, serve_in_process};

// The limiter's guarantee: no client gets more than N accepted requests in any window of W.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn never_more_than_n_in_any_window(
        limit in 1u32..20,
        window_ms in 100u64..5_000,
        gaps in proptest::collection::vec(0u64..400, 1..400),
    ) {
        let epoch = Instant::now();
        let l = RateLimiter::new(Policy { limit, window: Duration::from_millis(window_ms), max_clients: 10, ipv6_prefix: 64 }, epoch);
        let client: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut t = 0u64;
        let mut accepted: Vec<u64> = Vec::new();
        for gap in gaps {
            t += gap;
            if matches!(l.check(client, epoch + Duration::from_millis(t)), Decision::Allowed { .. }) {
                accepted.push(t);
            }
        }
        // every window [s, s + W) starting at an accepted request holds at most `limit`
        for (i, &start) in accepted.iter().enumerate() {
            let inside = accepted[i..].iter().take_while(|&&a| a < start + window_ms).count();
            prop_assert!(inside as u32 <= limit, "{} accepted in a window of {} ms (limit {})", inside, window_ms, limit);
        }
    }
}

async fn health_from(h: &Harness, peer: [u8; 4], headers: &[(&str, &str)]) -> Reply {
    let mut b = Request::get("/health").header("host", "127.0.0.1");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b.body(Body::empty()).expect("req");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::from((peer, 5000))));
    h.send(req).await
}

async fn discover_from(h: &Harness, peer: [u8; 4], key: &str) -> Reply {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let mut req = Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "server/discover")
        .body(Body::from(body))
        .expect("req");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::from((peer, 5000))));
    h.send(req).await
}

#[tokio::test(start_paused = true)]
async fn a_flood_gets_429_with_retry_after_and_ratelimit_headers_then_recovers() {
    let h = Harness::with_args(&["--rate-limit", "5", "--rate-window", "60"]);
    for _ in 0..5 {
        assert_eq!(
            health_from(&h, [127, 0, 0, 2], &[]).await.status,
            StatusCode::OK
        );
    }
    let r = health_from(&h, [127, 0, 0, 2], &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=66).contains(&retry), "{retry}");
    assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=5;w=60"));
    assert_eq!(
        r.header("ratelimit"),
        Some(format!("\"default\";r=0;t={retry}").as_str())
    );
    assert_eq!(r.code(), -32600);
    assert!(
        !r.text.contains("127.0.0"),
        "the body discloses nothing: {}",
        r.text
    );
    // another client is not affected
    assert_eq!(
        health_from(&h, [127, 0, 0, 3], &[]).await.status,
        StatusCode::OK
    );
    tokio::time::advance(Duration::from_secs(retry)).await;
    assert_eq!(
        health_from(&h, [127, 0, 0, 2], &[]).await.status,
        StatusCode::OK,
        "room after Retry-After"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_authentication_is_throttled_even_for_a_later_valid_key() {
    let h = Harness::with_args(&["--auth-fail-limit", "3", "--auth-fail-window", "60"]);
    for _ in 0..3 {
        assert_eq!(
            discover_from(&h, [127, 0, 0, 7], "wrong-key").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = discover_from(&h, [127, 0, 0, 7], KEY).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "valid key, but too many failures this window"
    );
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        discover_from(&h, [127, 0, 0, 8], KEY).await.status,
        StatusCode::OK,
        "other clients unaffected"
    );
    tokio::time::advance(Duration::from_secs(67)).await;
    assert_eq!(
        discover_from(&h, [127, 0, 0, 7], KEY).await.status,
        StatusCode::OK,
        "the window passed"
    );
}

#[tokio::test(start_paused = true)]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let h = Harness::with_args(&["--rate-limit", "1", "--trusted-proxy", "127.0.0.10/32"]);
    // through the trusted proxy, two different forwarded clients each get their budget
    let a = health_from(&h, [127, 0, 0, 10], &[("x-forwarded-for", "198.51.100.1")]).await;
    let b = health_from(&h, [127, 0, 0, 10], &[("x-forwarded-for", "198.51.100.2")]).await;
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    // an untrusted peer cannot dodge its limit by inventing addresses
    assert_eq!(
        health_from(&h, [127, 0, 0, 11], &[("x-forwarded-for", "203.0.113.1")])
            .await
            .status,
        StatusCode::OK
    );
    let r = health_from(&h, [127, 0, 0, 11], &[("x-forwarded-for", "203.0.113.2")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_limit_is_shared_by_every_connection_and_kept_per_source_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_arg = dir.path().to_string_lossy().into_owned();
    let (addr, stop) = serve_in_process(
        &[
            "--api-key",
            KEY,
            "--allow-dir",
            &dir_arg,
            "--rate-limit",
            "4",
        ],
        None,
    )
    .await;
    let port = addr.port();
    for source in [[127, 0, 0, 21], [127, 0, 0, 22], [127, 1, 2, 3]] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            // a new connection for every request: the limit must hold across connections
            let client = reqwest::Client::builder()
                .local_address(IpAddr::from(source))
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            let r = client
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await
                .expect("send");
            statuses.push(r.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "from {source:?}");
    }
    let _ = stop.send(());
}

#[tokio::test(start_paused = true)]
async fn a_client_cannot_name_its_address_in_the_header_the_proxy_does_not_write() {
    // The proxy (nginx as in the README) appends X-Forwarded-For and passes the client's own
    // Forwarded through. Rotating Forwarded must not buy the client a fresh budget.
    let h = Harness::with_args(&["--rate-limit", "1", "--trusted-proxy", "127.0.0.10/32"]);
    let first = health_from(
        &h,
        [127, 0, 0, 10],
        &[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=203.0.113.1"),
        ],
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    let second = health_from(
        &h,
        [127, 0, 0, 10],
        &[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=203.0.113.2"),
        ],
    )
    .await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    // Configured for Forwarded, the same two requests are two clients (and X-Forwarded-For is
    // the header ignored).
    let h = Harness::with_args(&[
        "--rate-limit",
        "1",
        "--trusted-proxy",
        "127.0.0.10/32",
        "--forwarded-header",
        "forwarded",
    ]);
    for client in ["for=203.0.113.1", "for=203.0.113.2"] {
        let r = health_from(
            &h,
            [127, 0, 0, 10],
            &[("x-forwarded-for", "198.51.100.7"), ("forwarded", client)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{client}");
    }
}
