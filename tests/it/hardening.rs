//! The attacks of the adversarial review (SECURITY_IMPLEMENTATION.md, "Reviewed attacks"),
//! replayed on real sockets and on the built binary: each test fails without its defence.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use secure_mcp_server::keys::{generate_key, keys_file_line};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{KEY, OTHER_KEY, RunningServer, serve_in_process};

/// The resident set of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

fn initialize_body(padding: usize) -> String {
    // `[[],[],...]`: the cheapest bytes to send and among the dearest to keep as a JSON value.
    let pad = vec!["[]"; padding].join(",");
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","clientInfo":{{"name":"x","version":"1","pad":[{pad}]}},"capabilities":{{"sampling":{{"pad":[{pad}]}},"experimental":{{"pad":[{pad}]}}}}}}}}"#
    )
}

async fn initialize(client: &reqwest::Client, url: &str, key: &str, body: String) -> (u16, Value) {
    let r = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn initialize_padding_is_not_kept_two_hundred_sessions_stay_under_64_mib() {
    let server = RunningServer::start(
        &[
            "--api-key",
            KEY,
            "--max-body",
            "1100000",
            "--rate-limit",
            "100000",
            "--max-sessions-per-key",
            "1000",
        ],
        &[],
    );
    let pid = server.child.id();
    let url = server.url();
    let client = reqwest::Client::new();
    // ~1 MiB each: three copies of 116k empty arrays
    let body = initialize_body(116_000);
    assert!(
        body.len() > 1_000_000 && body.len() < 1_100_000,
        "{}",
        body.len()
    );
    // warm up (allocator arenas, the first connections), then measure
    for _ in 0..4 {
        assert_eq!(initialize(&client, &url, KEY, body.clone()).await.0, 200);
    }
    let before = rss_bytes(pid);
    let mut sessions = 0;
    for _ in 0..50 {
        let rounds = (0..4).map(|_| initialize(&client, &url, KEY, body.clone()));
        for (status, _) in futures_util::future::join_all(rounds).await {
            assert_eq!(status, 200);
            sessions += 1;
        }
    }
    assert_eq!(sessions, 200);
    let grown = rss_bytes(pid).saturating_sub(before);
    assert!(
        grown < 64 * 1024 * 1024,
        "200 padded sessions grew RSS by {} MiB",
        grown / (1024 * 1024)
    );
}

#[tokio::test]
async fn one_key_cannot_take_every_session_it_gets_429_and_others_still_initialize() {
    let (addr, _stop) = serve_in_process(
        &[
            "--api-key",
            KEY,
            "--api-key",
            OTHER_KEY,
            "--max-sessions-per-key",
            "3",
        ],
        None,
    )
    .await;
    let url = format!("http://{addr}/mcp");
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(
            initialize(&client, &url, KEY, initialize_body(1)).await.0,
            200
        );
    }
    let (status, body) = initialize(&client, &url, KEY, initialize_body(1)).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(body["error"]["message"], "Too many sessions for this key");
    let (status, _) = initialize(&client, &url, OTHER_KEY, initialize_body(1)).await;
    assert_eq!(status, 200, "another key is not locked out");
}

/// A raw connection from `source`; true when the server closed it without answering.
async fn refused_at_accept(port: u16, source: [u8; 4]) -> bool {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind((IpAddr::from(source), 0).into()).expect("bind");
    let mut stream = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("connect");
    let _ = stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer or a close within 5 s");
    !matches!(read, Ok(n) if n > 0)
}

#[tokio::test]
async fn one_address_at_its_connection_cap_does_not_starve_another() {
    let (addr, _stop) =
        serve_in_process(&["--api-key", KEY, "--max-connections-per-ip", "3"], None).await;
    let port = addr.port();
    let mut idle = Vec::new();
    for _ in 0..3 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(([127, 0, 0, 41], 0).into()).expect("bind");
        idle.push(
            socket
                .connect(([127, 0, 0, 1], port).into())
                .await
                .expect("connect"),
        );
    }
    // give the server a moment to accept the idle sockets (bounded poll, no fixed sleep)
    let mut capped = false;
    for _ in 0..50 {
        if refused_at_accept(port, [127, 0, 0, 41]).await {
            capped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        capped,
        "a fourth connection from the same address is closed"
    );
    assert!(
        !refused_at_accept(port, [127, 0, 0, 42]).await,
        "another address is served"
    );
    drop(idle);
}

/// Opens a 2025 session for `key`; returns its id.
async fn open_session(client: &reqwest::Client, url: &str, key: &str) -> String {
    let r = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize_body(1))
        .send()
        .await
        .expect("initialize");
    assert_eq!(r.status(), 200);
    r.headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("session")
        .to_owned()
}

/// Asks for a session's GET stream.
async fn get_stream(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    session: &str,
) -> reqwest::Response {
    client
        .get(url)
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", session)
        .send()
        .await
        .expect("get")
}

/// Opens a 2025 session and its GET stream; returns the session id and the stream.
async fn session_stream(
    client: &reqwest::Client,
    url: &str,
    key: &str,
) -> (
    String,
    impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>>,
) {
    let session = open_session(client, url, key).await;
    let stream = get_stream(client, url, key, &session).await;
    assert_eq!(stream.status(), 200);
    (session, stream.bytes_stream())
}

/// Reads `stream` to its end; true if it ended cleanly within `within`.
async fn ends_cleanly(
    stream: impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>>,
    within: Duration,
) -> bool {
    let mut stream = std::pin::pin!(stream);
    tokio::time::timeout(within, async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                return false;
            }
        }
        true
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn a_sessions_stream_ends_when_the_session_is_deleted_or_expires() {
    let (addr, _stop) =
        serve_in_process(&["--api-key", KEY, "--session-idle-secs", "1"], None).await;
    let url = format!("http://{addr}/mcp");
    let client = reqwest::Client::new();
    let (session, stream) = session_stream(&client, &url, KEY).await;
    let deleted = client
        .delete(&url)
        .bearer_auth(KEY)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    assert!(
        ends_cleanly(stream, Duration::from_secs(1)).await,
        "DELETE ends the stream"
    );
    // expiry: the sweeper runs every second at this idle timeout
    let (_, stream) = session_stream(&client, &url, KEY).await;
    assert!(
        ends_cleanly(stream, Duration::from_secs(4)).await,
        "expiry ends the stream"
    );
}

#[tokio::test]
async fn a_key_removed_by_a_reload_loses_its_streams_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys");
    let (filed, kept) = (generate_key().expect("rng"), generate_key().expect("rng"));
    std::fs::write(&file, keys_file_line("filed", &filed)).expect("write");
    let file_arg = file.to_string_lossy().into_owned();
    let server = RunningServer::start(&["--keys-file", &file_arg, "--api-key", &kept], &[]);
    let url = server.url();
    let client = reqwest::Client::new();
    let (_, revoked_stream) = session_stream(&client, &url, &filed).await;
    let (_, kept_stream) = session_stream(&client, &url, &kept).await;
    std::fs::write(&file, "# revoked\n").expect("write");
    server.signal("HUP");
    assert!(
        ends_cleanly(revoked_stream, Duration::from_secs(1)).await,
        "the revoked key's stream ends cleanly within a second"
    );
    let mut kept_stream = std::pin::pin!(kept_stream);
    let still_open = tokio::time::timeout(Duration::from_millis(300), kept_stream.next()).await;
    assert!(
        !matches!(still_open, Ok(None)),
        "another key's stream stays open"
    );
}

#[tokio::test]
async fn a_key_holds_at_most_its_streams() {
    let (addr, _stop) = serve_in_process(
        &[
            "--api-key",
            KEY,
            "--api-key",
            OTHER_KEY,
            "--max-streams-per-key",
            "2",
        ],
        None,
    )
    .await;
    let url = format!("http://{addr}/mcp");
    let client = reqwest::Client::new();
    let (_, a) = session_stream(&client, &url, KEY).await;
    let (_, b) = session_stream(&client, &url, KEY).await;
    let session = open_session(&client, &url, KEY).await;
    let third = get_stream(&client, &url, KEY, &session).await;
    assert_eq!(third.status(), 429);
    let (_, other) = session_stream(&client, &url, OTHER_KEY).await;
    drop((a, b, other));
}

/// The metrics address from the server's log.
fn metrics_addr(server: &mut RunningServer) -> String {
    for _ in 0..25 {
        let log = server.drain_log();
        if let Some(addr) = log
            .split("metrics on http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
        {
            return addr.to_owned();
        }
    }
    panic!("no metrics line");
}

#[tokio::test]
async fn idle_sockets_on_the_metrics_listener_are_capped_and_timed_out() {
    let mut server = RunningServer::start(
        &[
            "--api-key",
            KEY,
            "--metrics-bind",
            "127.0.0.1:0",
            "--header-timeout-secs",
            "1",
        ],
        &[],
    );
    let metrics = metrics_addr(&mut server);
    // more idle sockets than the metrics listener takes
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(
            tokio::net::TcpStream::connect(&metrics)
                .await
                .expect("connect"),
        );
    }
    let client = reqwest::Client::new();
    assert_eq!(
        server.discover(&client, KEY).await,
        200,
        "the main listener still serves"
    );
    // every idle socket is closed: over the cap at once, the rest at the header timeout
    let closed = futures_util::future::join_all(idle.iter_mut().map(|s| async move {
        let mut buf = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(4), s.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }))
    .await;
    assert!(closed.iter().all(|c| *c), "{closed:?}");
    let scraped = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.expect("text");
    assert!(text.contains("connection_limit"), "refusals are counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_exchanged_with_an_outside_symlink_never_leaks_the_outside() {
    use crate::support::Harness;
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let h = Harness::with_args(&["--rate-limit", "1000000"]);
    let root = h.root();
    let marker = "OUTSIDE-MARKER-5f2c";
    // inside: data/sub/ holds notes.md; outside: a directory holding notes.md with the marker
    std::fs::write(h.outside.path().join("notes.md"), marker).expect("write");
    std::fs::write(h.outside.path().join(marker), marker).expect("write");
    let (sub, swap) = (root.join("sub"), root.join("swap"));
    std::os::unix::fs::symlink(h.outside.path(), &swap).expect("ln");

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, sub, swap) = (stop.clone(), sub.clone(), swap.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                renameat_with(CWD, &sub, CWD, &swap, RenameFlags::EXCHANGE).expect("exchange");
                n += 1;
            }
            n
        })
    };
    let mut answers = 0;
    for _ in 0..300 {
        let mut texts = Vec::new();
        for (tool, args) in [
            ("list_directory", json!({"path": "data/sub"})),
            ("read_file", json!({"path": "data/sub/notes.md"})),
            ("stat_path", json!({"path": "data/sub/notes.md"})),
            ("search_files", json!({"path": "data/sub", "pattern": "*"})),
            ("search_files", json!({"path": "data", "pattern": "*"})),
        ] {
            texts.push(h.call_tool(tool, args).await.to_string());
        }
        texts.push(
            h.modern(
                "resources/read",
                json!({"uri": "file:///data/sub/notes.md"}),
            )
            .await
            .text,
        );
        texts.push(
            h.modern(
                "completion/complete",
                json!({"ref": {"type": "ref/resource", "uri": "file:///{+path}"},
                       "argument": {"name": "path", "value": "data/sub/"}}),
            )
            .await
            .text,
        );
        for text in texts {
            assert!(!text.contains(marker), "leaked the outside: {text}");
            answers += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    assert!(swaps > 100, "the race ran ({swaps} exchanges)");
    assert_eq!(answers, 300 * 7);
}

fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

#[tokio::test]
async fn a_flood_over_the_limit_is_summarised_not_audited_line_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let audit_arg = audit.to_string_lossy().into_owned();
    let mut server = RunningServer::start(
        &[
            "--api-key",
            KEY,
            "--audit-log",
            &audit_arg,
            "--rate-limit",
            "2",
        ],
        &[],
    );
    let client = reqwest::Client::new();
    let health = format!("http://{}/health", server.addr);
    let mut statuses = Vec::new();
    for _ in 0..200 {
        statuses.push(
            client
                .get(&health)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2);
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    let events = audit_lines(&audit);
    // two answered, the first 429, and at shutdown one summary of the other 197
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[2]["status"], 429);
    assert!(events[2].get("suppressed").is_none());
    assert_eq!(events[3]["suppressed"], 197);
    assert_eq!(events[3]["client"], "127.0.0.1");
    let log = server.drain_log();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn the_audit_file_is_reopened_on_sighup_after_a_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let rotated = dir.path().join("audit.log.1");
    let audit_arg = audit.to_string_lossy().into_owned();
    let server = RunningServer::start(&["--api-key", KEY, "--audit-log", &audit_arg], &[]);
    let client = reqwest::Client::new();
    assert_eq!(server.discover(&client, KEY).await, 200);
    let mut before = 0;
    for _ in 0..50 {
        before = audit_lines(&audit).len();
        if before == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(before, 1);
    std::fs::rename(&audit, &rotated).expect("rotate");
    server.signal("HUP");
    let mut reopened = false;
    for _ in 0..50 {
        assert_eq!(server.discover(&client, KEY).await, 200);
        if audit.exists() && !audit_lines(&audit).is_empty() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened, "events go to a new file at the configured path");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&audit)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn refused_connections_are_all_counted_but_their_log_lines_are_throttled() {
    let mut server =
        RunningServer::start(&["--api-key", KEY, "--max-connections-per-ip", "1"], &[]);
    let _held = tokio::net::TcpStream::connect(&server.addr)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    for _ in 0..300 {
        let mut s = tokio::net::TcpStream::connect(&server.addr)
            .await
            .expect("connect");
        let mut buf = [0u8; 1];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    }
    let seconds = started.elapsed().as_secs() + 1;
    let log = server.drain_log();
    let lines = log
        .lines()
        .filter(|l| l.contains("connection_limit_per_ip"))
        .count() as u64;
    assert!(lines >= 1, "{log}");
    assert!(
        lines <= 20 * (seconds + 1),
        "{lines} log lines for 300 refusals in {seconds} s"
    );
    assert!(lines < 300, "not one line per refusal");
}
