//! The audit trail in its default place, the diagnostic log on stderr: written by the batching
//! writer in the log's own format, never holding a request up.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::support::RunningServer;

const KEY: &str = "audit-log-test-key-0123456789abcdef";

/// A server process, killed when the test ends however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server with stderr on a pipe the test reads only when it chooses: the listening line,
/// and the reader for the rest.
fn start_unread(args: &[&str]) -> (Child, String, BufReader<std::process::ChildStderr>) {
    let mut all = vec!["--api-key", KEY, "--rate-limit", "1000000"];
    all.extend_from_slice(args);
    let mut child = RunningServer::command(&all, &[("MCP_LOG", "info")])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("read") > 0,
            "the server ended"
        );
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split('/').next().expect("address").to_owned();
        }
    };
    (Child(child), addr, stderr)
}

/// `n` `server/discover` requests, 8 at a time, each given 10 s.
async fn send(addr: &str, n: usize) -> Vec<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let url = format!("http://{addr}/mcp");
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let mut statuses = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(8) {
        let batch = (0..8.min(n - chunk * 8)).map(|_| {
            client
                .post(&url)
                .bearer_auth(KEY)
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "server/discover")
                .json(&body)
                .send()
        });
        for reply in futures_util::future::join_all(batch).await {
            statuses.push(reply.map_or(0, |r| r.status().as_u16()));
        }
    }
    statuses
}

/// SIGTERM: the server drains, writes what the audit holds, and exits.
fn stop(child: &Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
}

/// Reads lines (on a thread, so the test is bounded) until the stream ends or 20 s pass.
fn read_rest(stderr: BufReader<std::process::ChildStderr>) -> Vec<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let until = std::time::SystemTime::now() + Duration::from_secs(20);
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
        if std::time::SystemTime::now() > until {
            break;
        }
    }
    lines
}

#[tokio::test]
async fn a_stderr_nobody_reads_holds_no_request_up_and_every_event_is_written_when_it_drains() {
    // 2,000 audit lines of about 300 bytes are ten times what a pipe holds (64 KiB): written by
    // the request, as a log event, they would stop the workers once the pipe is full.
    let (child, addr, stderr) = start_unread(&[]);
    let statuses = tokio::time::timeout(Duration::from_secs(60), send(&addr, 2_000))
        .await
        .expect("every request answered while nobody reads stderr");
    assert!(
        statuses.iter().all(|s| *s == 200),
        "{:?}",
        statuses.iter().find(|s| **s != 200)
    );
    stop(&child);
    let lines = read_rest(stderr);
    let audited: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("  INFO audit: request "))
        .collect();
    assert_eq!(audited.len(), 2_000, "every event, none dropped");
    for line in &audited {
        assert!(
            line.contains(" key_id=\"cli-1\"")
                && line.contains(" mcp_method=\"server/discover\"")
                && line.ends_with(" outcome=ok"),
            "whole lines in the text format: {line}"
        );
        assert!(!line.contains(KEY), "never the key");
    }
}

#[tokio::test]
async fn with_log_format_json_every_stderr_line_is_one_json_object_the_audit_ones_included() {
    let (child, addr, stderr) = start_unread(&["--log-format", "json"]);
    let statuses = send(&addr, 300).await;
    assert!(statuses.iter().all(|s| *s == 200));
    stop(&child);
    let lines = read_rest(stderr);
    let mut audited = 0;
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if value["target"] == "audit" {
            assert_eq!(value["level"], "INFO");
            assert_eq!(value["key_id"], "cli-1");
            assert_eq!(value["mcp_method"], "server/discover");
            assert_eq!(value["status"], 200);
            audited += 1;
        }
    }
    assert_eq!(audited, 300, "{lines:?}");
}

#[tokio::test]
async fn mcp_log_can_still_turn_the_audit_off() {
    let mut server = RunningServer::start(&["--api-key", KEY], &[("MCP_LOG", "info,audit=off")]);
    let statuses = send(&server.addr, 20).await;
    assert!(statuses.iter().all(|s| *s == 200));
    std::thread::sleep(Duration::from_millis(200));
    let log = server.drain_log();
    assert!(!log.contains("audit: request"), "{log}");
    let mut on = RunningServer::start(&["--api-key", KEY], &[("MCP_LOG", "info")]);
    send(&on.addr, 20).await;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(on.drain_log().matches("  INFO audit: request ").count(), 20);
}
