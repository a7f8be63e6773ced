//! Unit tests of [`super`].

use super::*;
use crate::security::principal::KeyId;

const V: ProtocolVersion = ProtocolVersion::V2025_11_25;

fn alice() -> Principal {
    Principal::from(KeyId::new("alice"))
}

#[tokio::test(start_paused = true)]
async fn sessions_expire_after_idle_timeout_and_use_refreshes_them() {
    let store = SessionStore::new(Duration::from_secs(60), 10);
    let id = store.create(alice(), V, Instant::now()).expect("create");
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(store.touch(&id, &alice(), Instant::now()), Ok(V));
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(store.touch(&id, &alice(), Instant::now()), Ok(V));
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(
        store.touch(&id, &alice(), Instant::now()),
        Err(RpcError::SessionNotFound)
    );
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_removes_expired_sessions_without_a_lookup() {
    let store = Arc::new(SessionStore::new(Duration::from_secs(10), 10));
    let _sweeper = store.spawn_sweeper();
    store.create(alice(), V, Instant::now()).expect("create");
    assert_eq!(store.len(), 1);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(store.len(), 0);
}

#[test]
fn a_session_answers_only_to_its_own_key() {
    let store = SessionStore::new(Duration::from_secs(60), 10);
    let now = Instant::now();
    let id = store.create(alice(), V, now).expect("create");
    let mallory = Principal::from(KeyId::new("mallory"));
    assert_eq!(
        store.touch(&id, &mallory, now),
        Err(RpcError::SessionNotFound)
    );
    assert_eq!(store.remove(&id, &mallory), Err(RpcError::SessionNotFound));
    assert_eq!(store.touch(&id, &alice(), now), Ok(V));
    assert_eq!(store.remove(&id, &alice()), Ok(()));
    assert_eq!(
        store.touch(&id, &alice(), now),
        Err(RpcError::SessionNotFound)
    );
}

#[tokio::test(start_paused = true)]
async fn the_cap_refuses_new_sessions_but_reclaims_expired_ones() {
    let store = SessionStore::new(Duration::from_secs(30), 2);
    store.create(alice(), V, Instant::now()).expect("1");
    store.create(alice(), V, Instant::now()).expect("2");
    assert_eq!(
        store.create(alice(), V, Instant::now()),
        Err(RpcError::SessionLimit)
    );
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(store.create(alice(), V, Instant::now()).is_ok());
    assert_eq!(store.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn one_key_cannot_hold_more_than_its_quota_of_sessions() {
    let store = SessionStore::with_quota(Duration::from_secs(30), 100, 2);
    let bob = Principal::from(KeyId::new("bob"));
    store.create(alice(), V, Instant::now()).expect("1");
    store.create(alice(), V, Instant::now()).expect("2");
    assert_eq!(
        store.create(alice(), V, Instant::now()),
        Err(RpcError::SessionQuota)
    );
    assert!(
        store.create(bob.clone(), V, Instant::now()).is_ok(),
        "others unaffected"
    );
    assert_eq!(store.held_by(&alice()), 2);
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(
        store.create(alice(), V, Instant::now()).is_ok(),
        "expired ones reclaimed"
    );
    assert_eq!(store.held_by(&alice()), 1);
    assert_eq!(store.held_by(&bob), 0);
}

#[tokio::test(start_paused = true)]
async fn a_session_closes_when_deleted_expired_or_its_key_is_revoked() {
    let store = SessionStore::new(Duration::from_secs(30), 100);
    let auth = Authenticated::new(alice());
    let now = Instant::now();
    let deleted = store.create_for(&auth, V, Map::new(), now).expect("a");
    let (_, state) = store.open(&deleted, &alice(), now).expect("open");
    let stream = state.open_get_stream(false).expect("stream");
    store.remove(&deleted, &alice()).expect("delete");
    assert!(state.closed().is_cancelled() && stream.is_cancelled());

    let expiring = store.create_for(&auth, V, Map::new(), now).expect("b");
    let (_, state) = store.open(&expiring, &alice(), now).expect("open");
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(store.sweep(Instant::now()), 1);
    assert!(state.closed().is_cancelled());

    let revoked = store
        .create_for(&auth, V, Map::new(), Instant::now())
        .expect("c");
    let (_, state) = store
        .open(&revoked, &alice(), Instant::now())
        .expect("open");
    auth.grant.revoked().cancel();
    assert!(state.closed().is_cancelled());
    assert_eq!(store.sweep(Instant::now()), 1);
    assert!(store.is_empty() && store.held_by(&alice()) == 0);
}

#[test]
fn only_known_capability_names_are_kept() {
    let declared = serde_json::json!({
        "sampling": {"tools": {}, "padding": [[], [], []]},
        "roots": {"listChanged": true},
        "elicitation": "not an object",
        "experimental": {"x": [1, 2, 3]},
        "huge": "x".repeat(4096),
    });
    let kept = known_capabilities(declared.as_object());
    assert_eq!(
        Value::Object(kept),
        serde_json::json!({"sampling": {}, "roots": {}})
    );
    assert!(known_capabilities(None).is_empty());
}

#[test]
fn a_new_key_under_an_old_id_does_not_inherit_its_sessions() {
    let store = SessionStore::new(Duration::from_secs(60), 10);
    let now = Instant::now();
    let (old, new) = crate::security::principal::replaced_key("alice");
    let id = store.create(old.clone(), V, now).expect("create");
    assert_eq!(store.touch(&id, &new, now), Err(RpcError::SessionNotFound));
    assert_eq!(store.touch(&id, &old, now), Ok(V));
}

#[test]
fn ids_are_unique_visible_ascii() {
    let store = SessionStore::new(Duration::from_secs(60), 100);
    let a = store.create(alice(), V, Instant::now()).expect("a");
    let b = store.create(alice(), V, Instant::now()).expect("b");
    assert_ne!(a, b);
    assert!(a.len() >= 43 && a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
}
