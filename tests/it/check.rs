//! `secure-mcp-server check` against the real server.

use secure_mcp_server::keys::generate_key;

use crate::support::RunningServer;

fn check(url: &str, key: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secure-mcp-server"))
        .args(["check", "--url", url, "--api-key", key])
        .args(extra)
        .output()
        .expect("run check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_passes_against_this_server_including_the_rate_limit_probe() {
    let key = generate_key().expect("rng");
    let server = RunningServer::start(&["--api-key", &key, "--rate-limit", "30"], &[]);
    let (code, out) = check(
        &server.url(),
        &key,
        &["--rate-limit", "--max-requests", "100"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.lines().any(|l| l == "check: 8 passed, 0 failed"),
        "{out}"
    );
    assert!(
        out.contains("PASS  rate limit -> 429 with Retry-After"),
        "{out}"
    );
}

#[test]
fn check_fails_and_exits_non_zero_when_a_defence_is_missing() {
    let key = generate_key().expect("rng");
    let server = RunningServer::start(&["--api-key", &key], &[]);
    // a wrong key makes "valid key works" fail; the rate-limit probe never reaches 429 in 5 requests
    let (code, out) = check(
        &server.url(),
        "not-the-key-9f8e7d6c5b4a39281706f5e4",
        &["--rate-limit", "--max-requests", "5"],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  valid key works"), "{out}");
    assert!(out.contains("FAIL  rate limit"), "{out}");
}
