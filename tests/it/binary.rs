//! The built binary, run as a user would: `--generate-key`, exit codes, the first-run key.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

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
    assert_eq!(ka.len(), 43, "256 bits in unpadded Base64 is 43 characters");
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

/// Starts the binary without a key on an ephemeral port; returns the child, the printed key and
/// the address it listens on, and everything it wrote to stderr so far.
#[test]
fn without_a_key_the_server_prints_one_generated_key_once_and_accepts_it() {
    let mut child = Command::new(BIN)
        .args(["--bind", "127.0.0.1:0"])
        .env_remove("MCP_API_KEYS")
        .env_remove("MCP_API_KEY")
        .env("MCP_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut addr = None;
    while addr.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server output");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = rest.split('/').next().map(str::to_owned);
        }
        lines.push(line);
    }
    let addr = addr.expect("address");
    let key = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| {
            l.len() == 43
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
        .expect("generated key line")
        .to_owned();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("curl") && l.contains(&addr)),
        "a ready-to-paste curl line"
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{addr}/mcp"))
            .bearer_auth(&key)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "server/discover")
            .json(&serde_json::json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{
                "io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}))
            .send()
            .await
            .expect("send")
            .status()
    });
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(200));
    while let Ok(line) = rx.try_recv() {
        lines.push(line);
    }
    child.kill().expect("kill");
    let _ = child.wait();
    let all = lines.join("\n");
    assert_eq!(
        all.matches(&key).count(),
        2,
        "the key appears once in the banner and once in the curl line, never in the log:\n{all}"
    );
    assert!(
        all.contains("key_id=\"generated\"") || all.contains("key_id=generated"),
        "the log names the key by id:\n{all}"
    );
}
