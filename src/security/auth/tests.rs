//! Unit tests of [`super`].

use super::*;
use axum::http::HeaderValue;

fn keys() -> ApiKeys {
    ApiKeys::from_plain([
        (KeyId::new("one"), "first-key-value"),
        (KeyId::new("two"), "second-key-value"),
        (KeyId::new("three"), "third-key-value"),
    ])
}

#[test]
fn verify_finds_each_key_and_only_exact_matches() {
    let keys = keys();
    let name = |k: &str| keys.verify(k).map(|id| id.as_str().to_owned());
    assert_eq!(name("first-key-value").as_deref(), Some("one"));
    assert_eq!(name("second-key-value").as_deref(), Some("two"));
    assert_eq!(name("third-key-value").as_deref(), Some("three"));
    for wrong in [
        "",
        "first-key-valu",
        "first-key-value ",
        "FIRST-KEY-VALUE",
        "x",
    ] {
        assert_eq!(keys.verify(wrong), None, "{wrong:?}");
    }
    assert_eq!(
        ApiKeys::from_plain(Vec::<(KeyId, &str)>::new()).verify("x"),
        None
    );
}

#[test]
fn a_key_identity_is_its_id_and_its_digest() {
    let a = KeyId::for_digest("alice", &keys::digest("first-secret"));
    let b = KeyId::for_digest("alice", &keys::digest("second-secret"));
    assert_ne!(a, b, "a new key under an old id is a new identity");
    assert_eq!(a.as_str(), b.as_str());
    assert_ne!(a.identity(), b.identity());
    assert_eq!(a, KeyId::for_digest("alice", &keys::digest("first-secret")));
}

fn ring_with_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf, KeyRing) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys");
    std::fs::write(&path, text).expect("write");
    let fixed = ApiKeys::from_plain([(KeyId::new("cli-1"), "fixed-key-value")]);
    let ring = KeyRing::new(fixed, Some(path.clone())).expect("ring");
    (dir, path, ring)
}

#[test]
fn a_reload_that_fails_refuses_every_file_key_and_keeps_the_fixed_ones() {
    let line = keys::keys_file_line("filed", "file-key-value");
    for broken in [
        "not a keys file\n".to_owned(),
        format!("{line}\nhalf-writ"),
        keys::keys_file_line("cli-1", "other-value"),
    ] {
        let (_dir, path, ring) = ring_with_file(&line);
        let filed = ring.authenticate("file-key-value").expect("file key");
        std::fs::write(&path, &broken).expect("write");
        assert!(ring.reload().is_err(), "{broken:?}");
        assert_eq!(
            ring.verify("file-key-value"),
            None,
            "{broken:?}: fails closed"
        );
        assert!(filed.grant.revoked().is_cancelled(), "its requests end");
        assert!(ring.verify("fixed-key-value").is_some());
    }
    let (_dir, path, ring) = ring_with_file(&line);
    std::fs::remove_file(&path).expect("rm");
    assert!(ring.reload().is_err());
    assert_eq!(
        ring.verify("file-key-value"),
        None,
        "a removed file: no file key"
    );
}

#[test]
fn an_emptied_keys_file_revokes_every_file_key() {
    let line = keys::keys_file_line("filed", "file-key-value");
    let (_dir, path, ring) = ring_with_file(&line);
    let fixed = ring.authenticate("fixed-key-value").expect("fixed");
    std::fs::write(&path, "# everyone revoked\n\n").expect("write");
    assert_eq!(ring.reload(), Ok(1));
    assert_eq!(ring.verify("file-key-value"), None);
    assert!(
        !fixed.grant.revoked().is_cancelled(),
        "a kept key keeps its grant"
    );
    // the same file again: the kept key's grant is the same one
    std::fs::write(&path, &line).expect("write");
    assert_eq!(ring.reload(), Ok(2));
    let again = ring.authenticate("fixed-key-value").expect("fixed");
    assert!(Arc::ptr_eq(&fixed.grant, &again.grant));
}

#[test]
fn debug_never_prints_keys() {
    let printed = format!("{:?}", keys());
    assert_eq!(printed, "ApiKeys(3 keys)");
}

fn headers(values: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_str(v).expect("header"),
        );
    }
    h
}

#[test]
fn bearer_token_parsing() {
    assert_eq!(bearer_token(&headers(&["Bearer abc"])), Ok("abc"));
    assert_eq!(bearer_token(&headers(&["bearer abc"])), Ok("abc"));
    assert_eq!(bearer_token(&headers(&["BEARER  abc"])), Ok("abc"));
    assert_eq!(
        bearer_token(&headers(&[])),
        Err(Rejection::MissingCredentials)
    );
    for bad in [
        "Basic YWJjOmRlZg==",
        "Bearer",
        "Bearer ",
        "Bearerabc",
        "Token abc",
        "Bearer a b",
    ] {
        assert_eq!(
            bearer_token(&headers(&[bad])),
            Err(Rejection::InvalidCredentials),
            "{bad}"
        );
    }
    assert_eq!(
        bearer_token(&headers(&["Bearer abc", "Bearer abc"])),
        Err(Rejection::InvalidCredentials)
    );
}
