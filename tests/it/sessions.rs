//! Legacy sessions: creation, reuse, ownership, DELETE, expiry (paused clock) and the cap.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Harness, KEY, OTHER_KEY};

fn ping() -> serde_json::Value {
    json!({"jsonrpc":"2.0","id":1,"method":"ping"})
}

async fn delete(h: &Harness, key: &str, session: Option<&str>) -> StatusCode {
    h.delete(key, session).await
}

#[tokio::test]
async fn a_session_is_reused_across_requests() {
    let h = Harness::new();
    let s = h.initialize(KEY, "2025-11-25").await;
    for _ in 0..3 {
        assert_eq!(h.legacy(KEY, Some(&s), ping()).await.status, StatusCode::OK);
    }
    assert_eq!(h.state.sessions.len(), 1);
}

#[tokio::test]
async fn requests_without_a_session_are_400_and_unknown_sessions_404() {
    let h = Harness::new();
    let r = h.legacy(KEY, None, ping()).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, -32600));
    let r = h.legacy(KEY, Some("never-issued"), ping()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_foreign_key_gets_404_for_someone_elses_session() {
    let h = Harness::new();
    let s = h.initialize(KEY, "2025-11-25").await;
    assert_eq!(
        h.legacy(OTHER_KEY, Some(&s), ping()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(delete(&h, OTHER_KEY, Some(&s)).await, StatusCode::NOT_FOUND);
    assert_eq!(
        h.legacy(KEY, Some(&s), ping()).await.status,
        StatusCode::OK,
        "still alive for its owner"
    );
}

#[tokio::test]
async fn delete_ends_the_session_and_later_requests_get_404() {
    let h = Harness::new();
    let s = h.initialize(KEY, "2025-11-25").await;
    assert_eq!(delete(&h, KEY, None).await, StatusCode::BAD_REQUEST);
    assert_eq!(delete(&h, KEY, Some(&s)).await, StatusCode::NO_CONTENT);
    assert_eq!(
        h.legacy(KEY, Some(&s), ping()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(delete(&h, KEY, Some(&s)).await, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn idle_sessions_expire() {
    let h = Harness::with_args(&["--session-idle-secs", "60"]);
    let s = h.initialize(KEY, "2025-11-25").await;
    tokio::time::advance(Duration::from_secs(50)).await;
    assert_eq!(
        h.legacy(KEY, Some(&s), ping()).await.status,
        StatusCode::OK,
        "use refreshes it"
    );
    tokio::time::advance(Duration::from_secs(50)).await;
    assert_eq!(h.legacy(KEY, Some(&s), ping()).await.status, StatusCode::OK);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(
        h.legacy(KEY, Some(&s), ping()).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_live_session_cap_refuses_new_sessions_with_503() {
    let h = Harness::with_args(&["--max-sessions", "2"]);
    h.initialize(KEY, "2025-11-25").await;
    h.initialize(KEY, "2025-11-25").await;
    let r = h
        .legacy(KEY, None, json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.state.sessions.len(), 2);
}
