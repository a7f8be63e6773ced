//! Operations on the real binary: the audit file, metrics, health details, TLS, graceful
//! shutdown with requests in flight, JSON logs.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use secure_mcp_server::keys::generate_key;
use serde_json::{Value, json};

use crate::support::RunningServer;

fn discover_body() -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{
        "io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}})
}

async fn call(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    method: &str,
    name: Option<&str>,
    params: Value,
) -> reqwest::Response {
    let mut params = params;
    params["_meta"] = discover_body()["params"]["_meta"].clone();
    let mut req = client
        .post(url)
        .bearer_auth(key)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}));
    if let Some(n) = name {
        req = req.header("mcp-name", n);
    }
    req.send().await.expect("send")
}

/// The binary with a key, an allowed directory `data` holding `a.txt` (and whatever `prepare`
/// adds), and the audit log in `audit.log` beside it.
fn audited_server(
    prepare: impl FnOnce(&std::path::Path),
) -> (tempfile::TempDir, String, RunningServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("a.txt"), "audited").expect("write");
    prepare(&data);
    let key = generate_key().expect("rng");
    let (data_arg, audit_arg) = (
        data.to_string_lossy().into_owned(),
        dir.path().join("audit.log").to_string_lossy().into_owned(),
    );
    let server = RunningServer::start(
        &[
            "--api-key",
            &key,
            "--allow-dir",
            &data_arg,
            "--audit-log",
            &audit_arg,
        ],
        &[],
    );
    (dir, key, server)
}

#[tokio::test]
async fn the_audit_file_holds_one_parseable_event_per_request_and_no_key() {
    let (dir, key, mut server) = audited_server(|_| {});
    let audit = dir.path().join("audit.log");
    let client = reqwest::Client::new();
    let url = server.url();
    assert_eq!(
        call(&client, &url, &key, "server/discover", None, json!({}))
            .await
            .status(),
        200
    );
    let r = call(
        &client,
        &url,
        &key,
        "tools/call",
        Some("read_file"),
        json!({"name":"read_file","arguments":{"path":"data/a.txt"}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = call(
        &client,
        &url,
        &key,
        "tools/call",
        Some("read_file"),
        json!({"name":"read_file","arguments":{"path":"data/../../etc/passwd"}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // a client-chosen name with a newline and a forged event in it
    let forged = "x\n{\"forged\":true,\"outcome\":\"ok\"}";
    let r = call(
        &client,
        &url,
        &key,
        "tools/call",
        Some("=?base64?eAp7ImZvcmdlZCI6dHJ1ZSwib3V0Y29tZSI6Im9rIn0=?="),
        json!({"name": forged}),
    )
    .await;
    assert!(r.status().is_success() || r.status().is_client_error());
    let r = client
        .post(&url)
        .bearer_auth("smcp_wrong_key_0000000000000000000000000000000000")
        .json(&discover_body())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let request_id = r.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();

    server.signal("TERM");
    assert_eq!(
        server.wait_exit(Duration::from_secs(10)),
        Some(0),
        "clean exit"
    );
    let text = std::fs::read_to_string(&audit).expect("audit file");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON event"))
        .collect();
    assert_eq!(
        events.len(),
        5,
        "one event per request, no forged line:\n{text}"
    );
    assert!(!text.contains(&key), "the key never reaches the audit file");
    for e in &events {
        for field in [
            "time",
            "request_id",
            "client",
            "http_method",
            "path",
            "status",
            "latency_ms",
            "outcome",
        ] {
            assert!(!e[field].is_null(), "{field} in {e}");
        }
    }
    assert_eq!(events[0]["key_id"], "cli-1");
    assert_eq!(events[0]["mcp_method"], "server/discover");
    assert_eq!(events[0]["era"], "2026");
    assert_eq!(events[0]["outcome"], "ok");
    assert_eq!(events[1]["name"], "read_file");
    assert_eq!(events[1]["file_path"], "data/a.txt");
    assert_eq!(
        events[2]["file_path"], "data/../../etc/passwd",
        "an escape attempt is recorded as asked"
    );
    assert_eq!(
        events[3]["name"], forged,
        "the newline stays inside the JSON string"
    );
    assert_eq!(events[4]["outcome"], "unauthorized");
    assert_eq!(events[4]["rpc_error"], -32600);
    assert_eq!(events[4]["request_id"], request_id.as_str());
    assert!(events[4]["key_id"].is_null());
    let log = server.drain_log();
    assert!(
        log.contains("sandbox_escape") && log.contains("auth_failed"),
        "security events in the log:\n{log}"
    );
}

fn counter(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_known_traffic_and_need_a_key() {
    let key = generate_key().expect("rng");
    let server = RunningServer::start(&["--api-key", &key], &[]);
    let client = reqwest::Client::new();
    let url = server.url();
    for _ in 0..3 {
        assert_eq!(
            call(&client, &url, &key, "server/discover", None, json!({}))
                .await
                .status(),
            200
        );
    }
    for _ in 0..2 {
        let r = client
            .post(&url)
            .bearer_auth("smcp_wrong_key_0000000000000000000000000000000000")
            .json(&discover_body())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401);
    }
    let r = call(
        &client,
        &url,
        &key,
        "tools/call",
        Some("system_info"),
        json!({"name":"system_info"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let metrics_url = format!("http://{}/metrics", server.addr);
    assert_eq!(
        client
            .get(&metrics_url)
            .send()
            .await
            .expect("send")
            .status(),
        401,
        "metrics need a key"
    );
    let text = client
        .get(&metrics_url)
        .bearer_auth(&key)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert_eq!(
        counter(
            &text,
            "mcp_requests_total{outcome=\"ok\",method=\"server/discover\"}"
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        counter(
            &text,
            "mcp_requests_total{outcome=\"unauthorized\",method=\"none\"}"
        ),
        3.0,
        "two wrong keys and the keyless scrape:\n{text}"
    );
    assert_eq!(
        counter(&text, "mcp_security_events_total{event=\"auth_failed\"}"),
        3.0
    );
    assert_eq!(
        counter(
            &text,
            "mcp_tool_calls_total{tool=\"system_info\",result=\"ok\"}"
        ),
        1.0
    );
    assert!(
        counter(
            &text,
            "mcp_request_duration_seconds_count{method=\"server/discover\"}"
        ) >= 3.0
    );
    assert!(counter(&text, "mcp_connections_open") >= 1.0);
    for family in [
        "mcp_rate_limit_tracked_clients",
        "mcp_sessions_live",
        "mcp_tasks_kept",
        "mcp_process_resident_memory_bytes",
        "mcp_process_cpu_seconds",
        "mcp_audit_dropped_events",
    ] {
        assert!(text.contains(family), "{family} in\n{text}");
    }

    let details = client
        .get(format!("http://{}/health/details", server.addr))
        .bearer_auth(&key)
        .send()
        .await
        .expect("send");
    assert_eq!(details.status(), 200);
    let d: Value = details.json().await.expect("json");
    for field in [
        "uptimeSeconds",
        "version",
        "sessions",
        "rateLimitClients",
        "memory",
        "audit",
    ] {
        assert!(!d[field].is_null(), "{field} in {d}");
    }
    let keyless = client
        .get(format!("http://{}/health/details", server.addr))
        .send()
        .await
        .expect("send");
    assert_eq!(keyless.status(), 401);
}

#[tokio::test]
async fn a_separate_metrics_listener_serves_without_a_key() {
    let key = generate_key().expect("rng");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let metrics_addr = probe.local_addr().expect("addr").to_string();
    drop(probe);
    let server = RunningServer::start(&["--api-key", &key, "--metrics-bind", &metrics_addr], &[]);
    let client = reqwest::Client::new();
    let mut text = String::new();
    for _ in 0..50 {
        if let Ok(r) = client
            .get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
        {
            text = r.text().await.expect("text");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text.contains("mcp_requests_total") || text.contains("mcp_connections_open"),
        "{text}"
    );
    let main = client
        .get(format!("http://{}/metrics", server.addr))
        .bearer_auth(&key)
        .send()
        .await
        .expect("send");
    assert_eq!(main.status(), 404, "not on the main listener");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let key = generate_key().expect("rng");
    let mut server = RunningServer::start(&["--api-key", &key, "--log-format", "json"], &[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        reqwest::get(format!("http://{}/health", server.addr))
            .await
            .expect("get")
    });
    let log = server.drain_log();
    let mut audit = 0;
    let mut summary = None;
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["target"] == "audit" {
            audit += 1;
            assert_eq!(v["path"], "/health", "a plain string, not a Debug form");
        }
        if v["message"] == "resources" {
            summary = Some(v);
        }
    }
    assert_eq!(audit, 1);
    // the sampler's summary line (its first comes at start): memory, CPU, sessions, clients
    let summary = summary.expect("a resources summary line");
    assert!(
        summary["resident_bytes"].as_i64().is_some_and(|b| b > 0),
        "{summary}"
    );
    for field in [
        "cpu_seconds",
        "connections",
        "sessions",
        "rate_limit_clients",
        "audit_dropped",
    ] {
        assert!(!summary[field].is_null(), "{field} in {summary}");
    }
}

fn tls_files(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.cert.pem()).expect("write");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write");
    (cert_path, key_path, cert.cert.der().to_vec())
}

/// A TLS client that trusts exactly `der`; returns the server certificate and the response.
fn https_get(
    addr: &str,
    der: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<(Vec<u8>, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(der.to_vec()))
        .map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut sock = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = tls.read_to_string(&mut out);
    let peer = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    Ok((peer, out))
}

#[test]
fn https_serves_tls_1_2_and_1_3_and_reloads_the_certificate_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key_file, der) = tls_files(dir.path(), "one");
    let key = generate_key().expect("rng");
    let (c, k) = (
        cert.to_string_lossy().into_owned(),
        key_file.to_string_lossy().into_owned(),
    );
    let server = RunningServer::start(&["--api-key", &key, "--tls-cert", &c, "--tls-key", &k], &[]);
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("listening on https://"))
    );
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let (peer, response) = https_get(&server.addr, &der, versions).expect("TLS works");
        assert_eq!(peer, der);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    // plain HTTP to the TLS port gets no HTTP answer
    let mut plain = std::net::TcpStream::connect(&server.addr).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut buf = String::new();
    let _ = plain.read_to_string(&mut buf);
    assert!(!buf.contains("200 OK"));

    let (_, _, new_der) = {
        let (c2, k2, d2) = tls_files(dir.path(), "two");
        std::fs::rename(&c2, &cert).expect("swap cert");
        std::fs::rename(&k2, &key_file).expect("swap key");
        (c2, k2, d2)
    };
    server.signal("HUP");
    let mut reloaded = false;
    for _ in 0..50 {
        if let Ok((peer, _)) = https_get(&server.addr, &new_der, &[&rustls::version::TLS13])
            && peer == new_der
        {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(reloaded, "new connections get the new certificate");
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_ends_streams_and_exits_0() {
    let key = generate_key().expect("rng");
    let mut server = RunningServer::start(&["--api-key", &key], &[]);
    let addr = server.addr.clone();
    let body = discover_body().to_string();
    // a request whose body is still arriving when the signal comes
    let mut slow = std::net::TcpStream::connect(&addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).expect("head");
    slow.write_all(&body.as_bytes()[..10])
        .expect("part of the body");
    // a long-lived 2025-era GET stream
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let session = rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("http://{addr}/mcp"))
            .bearer_auth(&key)
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}))
            .send()
            .await
            .expect("initialize");
        r.headers()["mcp-session-id"].to_str().expect("ascii").to_owned()
    });
    let mut listen = std::net::TcpStream::connect(&addr).expect("connect");
    listen
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let get = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\n\r\n"
    );
    listen.write_all(get.as_bytes()).expect("get");
    let mut seen = String::new();
    for _ in 0..10 {
        let mut chunk = [0u8; 2048];
        let n = listen.read(&mut chunk).expect("read");
        seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
        if seen.contains("retry: ") {
            break;
        }
    }
    assert!(
        seen.starts_with("HTTP/1.1 200") && seen.contains("retry: "),
        "the stream is open: {seen}"
    );

    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    slow.write_all(&body.as_bytes()[10..])
        .expect("rest of the body");
    let mut response = String::new();
    let _ = slow.read_to_string(&mut response);
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "the request in flight finished: {response}"
    );
    assert!(response.contains("supportedVersions"));
    let mut rest = String::new();
    let ended = listen.read_to_string(&mut rest);
    assert!(
        ended.is_ok() && rest.ends_with("0\r\n\r\n"),
        "the stream ended cleanly (last chunk): {rest:?}"
    );
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    // and nothing new is accepted
    assert!(std::net::TcpStream::connect(&addr).is_err());
}

#[tokio::test]
async fn resource_reads_and_path_completions_are_audited_like_the_file_tools() {
    let (dir, key, mut server) = audited_server(|data| {
        std::os::unix::fs::symlink("/etc", data.join("out")).expect("ln");
    });
    let audit = dir.path().join("audit.log");
    let client = reqwest::Client::new();
    let url = server.url();
    for uri in ["file:///data/a.txt", "file:///data/out/passwd"] {
        let r = call(
            &client,
            &url,
            &key,
            "resources/read",
            Some(uri),
            json!({ "uri": uri }),
        )
        .await;
        assert_eq!(r.status(), 200, "{uri}");
    }
    for value in ["data/a", "data/out/pass"] {
        let r = call(
            &client,
            &url,
            &key,
            "completion/complete",
            None,
            json!({"ref": {"type": "ref/resource", "uri": "file:///{+path}"},
                   "argument": {"name": "path", "value": value}}),
        )
        .await;
        assert_eq!(r.status(), 200, "{value}");
    }
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    let text = std::fs::read_to_string(&audit).expect("audit file");
    let paths: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["file_path"].clone())
        .collect();
    assert_eq!(
        paths,
        [
            json!("data/a.txt"),
            json!("data/out/passwd"),
            json!("data"),
            json!("data/out")
        ],
        "{text}"
    );
    let log = server.drain_log();
    assert_eq!(
        log.matches("event=\"sandbox_escape\"").count()
            + log.matches("event=sandbox_escape").count(),
        2,
        "the read through a symlink and the completion through it:\n{log}"
    );
}

#[test]
fn check_speaks_https_and_trusts_a_given_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key_file, _) = tls_files(dir.path(), "check");
    let key = generate_key().expect("rng");
    let (c, k) = (
        cert.to_string_lossy().into_owned(),
        key_file.to_string_lossy().into_owned(),
    );
    let server = RunningServer::start(&["--api-key", &key, "--tls-cert", &c, "--tls-key", &k], &[]);
    let port = server.addr.rsplit(':').next().expect("port");
    let url = format!("https://localhost:{port}/mcp");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_secure-mcp-server"))
            .args(["check", "--url", &url, "--api-key", &key])
            .args(extra)
            .output()
            .expect("run check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["--ca-cert", &c]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 failed"), "{out}");
    let (code, out) = run(&[]);
    assert_eq!(
        code,
        Some(1),
        "an untrusted certificate fails the probes: {out}"
    );
}
