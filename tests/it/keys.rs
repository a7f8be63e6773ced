//! Keys at rest and in motion, on the real binary: the keys file of digests, reload on SIGHUP,
//! weak keys refused, and no key ever in the log.

use std::time::Duration;

use secure_mcp_server::keys::{generate_key, keys_file_line};
use serde_json::json;

use crate::support::RunningServer;

/// Polls `probe` (bounded: 50 tries, 100 ms apart) until it returns true.
async fn eventually(mut probe: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..50 {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn keys_file_digests_are_reloaded_on_sighup_without_dropping_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys");
    let (a, b) = (generate_key().expect("rng"), generate_key().expect("rng"));
    std::fs::write(
        &file,
        format!("# team keys\n{}\n", keys_file_line("alpha", &a)),
    )
    .expect("write");
    let file_arg = file.to_string_lossy().into_owned();
    let mut server = RunningServer::start(
        &["--keys-file", &file_arg, "--auth-fail-limit", "1000"],
        &[],
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    assert_eq!(server.discover(&client, &a).await, 200);
    assert_eq!(server.discover(&client, &b).await, 401);

    std::fs::write(&file, format!("{}\n", keys_file_line("beta", &b))).expect("write");
    server.signal("HUP");
    assert!(
        eventually(async || server.discover(&client, &b).await == 200).await,
        "the added key works"
    );
    assert_eq!(
        server.discover(&client, &a).await,
        401,
        "the removed key is refused"
    );

    std::fs::write(&file, "not a keys file\n").expect("write");
    server.signal("HUP");
    let log_says_refused = eventually(async || {
        server
            .drain_log()
            .contains("every key of the file is refused")
    })
    .await;
    assert!(log_says_refused, "{}", server.drain_log());
    assert_eq!(
        server.discover(&client, &b).await,
        401,
        "a file that does not parse fails closed"
    );
    let log = server.drain_log();
    assert!(
        !log.contains("not a keys file"),
        "the file's content is not logged"
    );

    std::fs::write(&file, format!("{}\n", keys_file_line("beta", &b))).expect("write");
    server.signal("HUP");
    assert!(
        eventually(async || server.discover(&client, &b).await == 200).await,
        "a file that loads again brings its keys back"
    );
    std::fs::write(&file, "# every file key revoked\n\n").expect("write");
    server.signal("HUP");
    assert!(
        eventually(async || server.discover(&client, &b).await == 401).await,
        "an emptied file revokes every file key"
    );
}

#[test]
fn a_key_id_used_by_two_sources_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys");
    let other = generate_key().expect("rng");
    std::fs::write(&file, keys_file_line("cli-1", &other)).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secure-mcp-server"))
        .args(["--api-key", &generate_key().expect("rng")])
        .arg("--keys-file")
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'cli-1'"));
}

#[test]
fn weak_keys_are_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secure-mcp-server"))
        .args(["--api-key", "hunter2-password"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("128 bits") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}

#[tokio::test]
async fn no_key_ever_reaches_the_log_even_at_trace_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys");
    let (cli_key, env_key, file_key) = (
        generate_key().expect("rng"),
        generate_key().expect("rng"),
        generate_key().expect("rng"),
    );
    let wrong = generate_key().expect("rng");
    std::fs::write(&file, keys_file_line("filed", &file_key)).expect("write");
    let file_arg = file.to_string_lossy().into_owned();
    let mut server = RunningServer::start(
        &[
            "--api-key",
            &cli_key,
            "--env-keys",
            "--keys-file",
            &file_arg,
        ],
        &[("MCP_LOG", "trace"), ("MCP_API_KEYS", &env_key)],
    );
    let client = reqwest::Client::new();
    for key in [&cli_key, &env_key, &file_key] {
        assert_eq!(server.discover(&client, key).await, 200);
    }
    assert_eq!(server.discover(&client, &wrong).await, 401);
    // a legacy session, a malformed body, a query-string key
    let init = client
        .post(server.url())
        .bearer_auth(&cli_key)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}))
        .send()
        .await
        .expect("send");
    assert_eq!(init.status(), 200);
    let _ = client
        .post(format!("{}?api_key={cli_key}", server.url()))
        .body("{bad")
        .send()
        .await;
    let _ = client
        .post(server.url())
        .bearer_auth(&env_key)
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await;
    server.signal("HUP");
    let log = server.drain_log();
    assert!(log.contains("audit"), "the log was captured:\n{log}");
    for (name, key) in [
        ("cli", &cli_key),
        ("env", &env_key),
        ("file", &file_key),
        ("wrong", &wrong),
    ] {
        assert!(
            !log.contains(key.as_str()),
            "the {name} key appeared in the log:\n{log}"
        );
    }
}
