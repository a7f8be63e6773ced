//! The built binary, run as a user would: `--generate-key`, exit codes, the first-run key.

use std::process::Command;

use crate::support::RunningServer;

const BIN: &str = env!("CARGO_BIN_EXE_secure-mcp-server");

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("MCP_API_KEYS")
        .env_remove("MCP_API_KEY")
        .env_remove("MCP_BIND");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run binary")
}

#[test]
fn generate_key_prints_one_256_bit_url_safe_key_and_exits_0() {
    let a = run(&["--generate-key"], &[]);
    let b = run(&["--generate-key"], &[]);
    assert!(a.status.success() && b.status.success());
    let out_a = String::from_utf8(a.stdout).expect("utf8");
    let out_b = String::from_utf8(b.stdout).expect("utf8");
    let (ka, kb) = (
        out_a.lines().next().unwrap_or_default(),
        out_b.lines().next().unwrap_or_default(),
    );
    let body = ka.strip_prefix("smcp_").expect("the smcp_ prefix");
    assert_eq!(
        body.len(),
        43,
        "256 bits in unpadded Base64 is 43 characters"
    );
    assert!(
        ka.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "{ka}"
    );
    assert_ne!(ka, kb, "two runs differ");
    // the keys-file line: an id and the SHA-256 of the key, never the key itself
    let line = out_a.lines().last().expect("keys-file line");
    let (id, digest) = line.split_once(':').expect("id:digest");
    assert!(id.starts_with("key-"));
    assert_eq!(digest.len(), 64);
    assert!(!out_a.lines().skip(1).any(|l| l.contains(ka)));
}

#[test]
fn bad_configuration_exits_64_with_one_line() {
    let missing_dir = ["--allow-dir", "/definitely/not/a/dir"];
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case; 6] = [
        (&["--bind", "not-an-address"], &[]),
        (&["--api-key", ""], &[]),
        (&missing_dir, &[]),
        (&["--env-keys"], &[]),
        (&["--max-body", "0"], &[]),
        (&["--no-such-flag"], &[]),
    ];
    for (args, env) in cases {
        let out = run(args, env);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.trim().is_empty(), "{args:?}");
    }
    let out = run(&["--bind", "not-an-address"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
}

#[test]
fn every_configuration_problem_is_reported_at_once_one_line_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "not a keys file line\n").expect("write");
    let keys = keys.to_string_lossy().into_owned();
    // flags that parse but are wrong, then files that do not open: each area says its own
    let out = run(
        &[
            "--bind",
            "nowhere",
            "--max-body",
            "0",
            "--allow-origin",
            "*",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    for flag in ["--bind", "--allow-origin", "--max-body"] {
        assert!(lines.iter().any(|l| l.contains(flag)), "{flag}: {stderr}");
    }
    let out = run(
        &["--allow-dir", "/definitely/not/a/dir", "--keys-file", &keys],
        &[],
    );
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("--allow-dir"), "{stderr}");
    assert!(lines[1].contains("--keys-file"), "{stderr}");
}

#[test]
fn env_keys_are_read_from_mcp_api_keys() {
    // A later check fails (--max-body 0) only once the keys were accepted; without
    // MCP_API_KEYS the key check itself fails, naming the variable.
    let out = run(
        &["--env-keys", "--max-body", "0"],
        &[(
            "MCP_API_KEYS",
            "k-one-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1,k-two-Hs5dG1aK9eU7oI3rT6yP2xW8mNb4vCz0",
        )],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-body"));
    let out = run(&["--env-keys", "--max-body", "0"], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MCP_API_KEYS"));
}

#[tokio::test]
async fn without_a_key_the_server_prints_one_generated_key_once_on_a_terminal_and_accepts_it() {
    let mut server = RunningServer::start_on_terminal(&[], &[("MCP_LOG", "debug")]);
    let key = server
        .log
        .iter()
        .map(|l| l.trim())
        .find(|l| {
            l.len() == 48
                && l.starts_with("smcp_")
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
        .expect("generated key line")
        .to_owned();
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("curl") && l.contains(&server.addr)),
        "a ready-to-paste curl line with the real address"
    );
    assert_eq!(server.discover(&reqwest::Client::new(), &key).await, 200);
    let all = server.drain_log();
    assert_eq!(
        all.matches(&key).count(),
        2,
        "the key appears once in the banner and once in the curl line, never in the log:\n{all}"
    );
    assert!(
        all.contains("key_id=\"generated\""),
        "the log names the key by id:\n{all}"
    );
}

#[test]
fn without_a_key_and_without_a_terminal_the_server_refuses_to_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secure-mcp-server"))
        .args(["--bind", "127.0.0.1:0"])
        .env_remove("MCP_API_KEYS")
        .env_remove("MCP_API_KEY")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--generate-key"), "{stderr}");
    assert!(!stderr.contains("smcp_"), "no key is printed: {stderr}");
}

#[test]
fn env_example_documents_every_mcp_variable() {
    use clap::CommandFactory;
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"))
        .expect(".env.example");
    let documented: Vec<String> = example
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
        .filter(|k| k.starts_with("MCP_"))
        .collect();
    let mut expected: Vec<String> = secure_mcp_server::config::Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_env().and_then(|e| e.to_str()).map(str::to_owned))
        .collect();
    expected.extend(["MCP_LOG", "MCP_API_KEYS", "MCP_CHECK_API_KEY"].map(String::from));
    for var in &expected {
        assert!(
            documented.contains(var),
            "{var} is missing from .env.example"
        );
    }
}

#[test]
fn the_env_example_values_are_a_valid_configuration() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"))
        .expect(".env.example");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::write(&keys, secure_mcp_server::keys::keys_file_line("a", "k")).expect("write");
    let mut cmd = Command::new(BIN);
    for line in example.lines().filter(|l| l.starts_with("MCP_")) {
        let (k, v) = line.split_once('=').expect("k=v");
        let v = match k {
            "MCP_ALLOW_DIRS" => dir.path().to_string_lossy().into_owned(),
            "MCP_KEYS_FILE" => keys.to_string_lossy().into_owned(),
            // port 0 and an invalid extra flag make the process exit after validation
            _ => v.to_owned(),
        };
        cmd.env(k, v);
    }
    // --max-body 0 is refused after every MCP_* value was parsed and validated
    let out = cmd.args(["--max-body", "0"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr.contains("--max-body"),
        "only the deliberate error: {stderr}"
    );
}

#[test]
fn policy_check_prints_what_each_key_may_do_or_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.toml");
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        secure_mcp_server::keys::keys_file_line("alice", "some-key-value"),
    )
    .expect("write");
    std::fs::write(
        &policy,
        "[defaults]\nrate_limit = \"600/60s\"\n[keys.alice]\ntools = [\"read_file\", \"list_*\"]\n",
    )
    .expect("write");
    let (policy, keys) = (
        policy.to_string_lossy().into_owned(),
        keys.to_string_lossy().into_owned(),
    );
    let out = run(&["policy", "check", &policy, "--keys-file", &keys], &[]);
    assert_eq!(out.status.code(), Some(0));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("alice: tools read_file, list_*; resources yes"),
        "{report}"
    );
    assert!(report.contains("every other key: every tool; resources yes; 600/60s requests"));
    // without the keys file, alice is nobody; and the server refuses to start on it
    let out = run(&["policy", "check", &policy], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys.alice: no key has this id"));
    let out = run(
        &[
            "--api-key",
            "k1-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGk",
            "--policy",
            &policy,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--policy: keys.alice"));
}

#[test]
fn a_shared_state_secret_others_can_read_or_guess_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret");
    let arg = path.to_string_lossy().into_owned();
    let key = "k1-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGk";
    for (text, mode, says) in [
        (
            "Hs5dG1aK9eU7oI3rT6yP2xW8mNb4vCz0qLj",
            0o644,
            "group or others",
        ),
        ("hunter2", 0o600, "too little entropy"),
    ] {
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let out = run(&["--api-key", key, "--state-secret-file", &arg], &[]);
        assert_eq!(out.status.code(), Some(64), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--state-secret-file") && stderr.contains(says),
            "{stderr}"
        );
        assert!(!stderr.contains(text), "the secret is never printed");
    }
}

#[tokio::test]
async fn the_redis_password_comes_from_the_environment_and_is_never_printed() {
    let redis = crate::redis_server::RedisServer::start_with(&["--requirepass", "pw-Hs5dG1aK9eU7"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "Hs5dG1aK9eU7oI3rT6yP2xW8mNb4vCz0qLj").expect("write");
    std::fs::set_permissions(
        &secret,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .expect("chmod");
    let key = "k1-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGk";
    let url = format!("redis://:url-pw-Zq81xUv@127.0.0.1:{}/", redis.port);
    let secret_arg = secret.to_string_lossy().into_owned();
    let args = [
        "--api-key",
        key,
        "--redis-url",
        &url,
        "--state-secret-file",
        &secret_arg,
        "--fleet-size",
        "2",
    ];
    let client = reqwest::Client::new();
    // MCP_REDIS_PASSWORD wins over the URL's; with the right one the budgets are shared.
    for (password, up) in [("pw-Hs5dG1aK9eU7", "1"), ("wrong-pw-7", "0")] {
        let mut server = RunningServer::start(
            &args,
            &[("MCP_REDIS_PASSWORD", password), ("MCP_LOG", "debug")],
        );
        assert_eq!(
            server.discover(&client, key).await,
            200,
            "served either way"
        );
        let metrics = server.metrics(&client, key).await;
        assert!(
            metrics.contains(&format!("mcp_fleet_redis_up {up}")),
            "{password}: {metrics}"
        );
        server.signal("TERM");
        server.wait_exit(std::time::Duration::from_secs(10));
        let log = server.drain_log();
        for secret in [password, "url-pw-Zq81xUv"] {
            assert!(!log.contains(secret), "{secret} in the log:\n{log}");
        }
    }
}

#[tokio::test]
async fn an_issuer_never_reached_refuses_its_tokens_and_says_so_in_the_log() {
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port");
    let issuer = format!("http://{closed}");
    let key = "k1-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGk";
    let mut server = RunningServer::start(
        &[
            "--api-key",
            key,
            "--oauth-issuer",
            &issuer,
            "--public-url",
            "http://127.0.0.1:8080/mcp",
        ],
        &[],
    );
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(serde_json::json!({"alg": "ES256", "kid": "k1"})),
        b64(serde_json::json!({"iss": issuer, "sub": "a", "aud": "x", "exp": 4_000_000_000u64}))
    );
    let reply = reqwest::Client::new()
        .post(server.url())
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status(), 401);
    let challenge = reply
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(challenge.contains("cannot be reached"), "{challenge}");
    server.signal("TERM");
    server.wait_exit(std::time::Duration::from_secs(10));
    let log = server.drain_log();
    assert!(
        log.contains("issuer keys could not be fetched: tokens of this issuer are refused"),
        "{log}"
    );
    assert!(!log.contains(&token), "the token is never logged");
}
