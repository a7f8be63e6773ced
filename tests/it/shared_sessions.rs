//! 2025-era sessions in a fleet: minted on one instance, honoured on the others for their key
//! only, ended everywhere by a DELETE anywhere.

use axum::http::StatusCode;
use serde_json::json;

use crate::redis_server::{RedisServer, fleet, wait_until_up};
use crate::support::{Harness, KEY, OTHER_KEY};

fn ping() -> serde_json::Value {
    json!({"jsonrpc":"2.0","id":7,"method":"ping"})
}

/// The status of a ping on `session` with `key`.
async fn pinged(h: &Harness, key: &str, session: &str) -> StatusCode {
    h.legacy(key, Some(session), ping()).await.status
}

#[tokio::test]
async fn a_session_minted_on_one_instance_works_on_the_others_for_its_key_only() {
    let redis = RedisServer::start();
    let (instances, _dir) = fleet(&redis, 3, &[]);
    let session = instances[0].initialize(KEY, "2025-06-18").await;
    for other in &instances[1..] {
        let reply = other.legacy(KEY, Some(&session), ping()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let list = other
            .legacy(
                KEY,
                Some(&session),
                json!({"jsonrpc":"2.0","id":8,"method":"tools/list"}),
            )
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let stranger = other.legacy(OTHER_KEY, Some(&session), ping()).await;
        assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    }
    // The stranger's attempts ended nothing.
    let still = instances[2].legacy(KEY, Some(&session), ping()).await;
    assert_eq!(still.status, StatusCode::OK);
    // Redis holds no session id and no key.
    for entry in redis.dump().await {
        assert!(!entry.contains(&session), "{entry}");
        assert!(!entry.contains(KEY) && !entry.contains("cli-1"), "{entry}");
    }
}

#[tokio::test]
async fn a_delete_on_any_instance_ends_the_session_on_all() {
    let redis = RedisServer::start();
    let (instances, _dir) = fleet(&redis, 3, &[]);
    let session = instances[0].initialize(KEY, "2025-11-25").await;
    // Instance 2 takes the session in before it is ended elsewhere.
    assert_eq!(pinged(&instances[2], KEY, &session).await, StatusCode::OK);
    let refused = instances[1].delete(OTHER_KEY, Some(&session)).await;
    assert_eq!(refused, StatusCode::NOT_FOUND, "another key cannot end it");
    assert_eq!(
        instances[1].delete(KEY, Some(&session)).await,
        StatusCode::NO_CONTENT
    );
    for instance in &instances {
        let reply = instance.legacy(KEY, Some(&session), ping()).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    }
}

#[tokio::test]
async fn a_session_minted_during_an_outage_is_shared_once_redis_is_back() {
    let mut redis = RedisServer::start();
    let (instances, _dir) = fleet(&redis, 2, &[]);
    redis.stop();
    let session = instances[0].initialize(KEY, "2025-11-25").await;
    assert_eq!(pinged(&instances[0], KEY, &session).await, StatusCode::OK);
    assert_eq!(
        pinged(&instances[1], KEY, &session).await,
        StatusCode::NOT_FOUND
    );
    redis.restart();
    wait_until_up(&instances).await;
    // Its next request on its own instance records it; then the others honour it.
    assert_eq!(pinged(&instances[0], KEY, &session).await, StatusCode::OK);
    assert_eq!(pinged(&instances[1], KEY, &session).await, StatusCode::OK);
}
