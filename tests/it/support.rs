//! The test harness: the real router over a real temporary directory, and request builders
//! for both protocol eras.

use std::os::unix::fs::symlink;
use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use clap::Parser;
use http_body_util::BodyExt;
use secure_mcp_server::app::{AppState, router};

/// The router, boxed: the tests hold it by a name.
pub type App = tower::util::BoxCloneSyncService<
    Request<Body>,
    axum::response::Response,
    std::convert::Infallible,
>;
use secure_mcp_server::config::{Cli, Config};
use secure_mcp_server::server::limits;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const KEY: &str = "test-key-alpha-0123456789abcdef";
pub const OTHER_KEY: &str = "test-key-bravo-0123456789abcdef";
pub const MODERN: &str = "2026-07-28";

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON-RPC error code of the body.
    pub fn code(&self) -> i64 {
        self.json()["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no error code: {}", self.text))
    }
}

/// Lays out a sandbox root with the cases the tests need: text, binary, nested files, a symlink
/// inside, symlinks out, a FIFO and a socket. Returns the root's public name.
pub fn populate(root: &Path, outside: &Path) {
    std::fs::write(outside.join("secret.txt"), "TOP-SECRET-OUTSIDE").expect("write");
    std::fs::write(root.join("hello.txt"), "hello world\n").expect("write");
    std::fs::write(root.join("binary.bin"), [0u8, 159, 146, 150, 255]).expect("write");
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::write(root.join("sub/notes.md"), "# notes\n").expect("write");
    std::fs::write(root.join("sub/deeper/data.json"), "{}").expect("write");
    std::fs::write(root.join("big.txt"), "x".repeat(3000)).expect("write");
    symlink(root.join("hello.txt"), root.join("link-inside")).expect("ln");
    symlink(outside.join("secret.txt"), root.join("link-out")).expect("ln");
    symlink(outside, root.join("dir-out")).expect("ln");
    symlink("/dev/zero", root.join("dev-zero")).expect("ln");
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let sock = std::os::unix::net::UnixListener::bind(root.join("socket")).expect("socket");
    std::mem::forget(sock);
}

/// The real router with two keys and one allowed directory named `data`.
pub struct Harness {
    pub app: App,
    pub state: AppState,
    pub outside: tempfile::TempDir,
    _base: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_args(&[])
    }

    pub fn with_args(extra: &[&str]) -> Self {
        Self::configured(extra, |_| {})
    }

    /// A harness whose configuration `edit` changes after the flags are read (settings no
    /// flag reaches).
    pub fn configured(extra: &[&str], edit: impl FnOnce(&mut Config)) -> Self {
        Self::built(extra, edit, |state| state)
    }

    /// A harness whose MCP server is `server` (an embedder's own tools), over the same flags.
    pub fn serving(
        extra: &[&str],
        server: std::sync::Arc<secure_mcp_server::mcp::dispatch::McpServer>,
    ) -> Self {
        Self::built(extra, |_| {}, |state| state.with_server(server))
    }

    fn built(
        extra: &[&str],
        edit: impl FnOnce(&mut Config),
        finish: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let base = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("data");
        std::fs::create_dir(&root).expect("mkdir");
        populate(&root, outside.path());
        let root_arg = root.to_string_lossy().into_owned();
        let mut argv = vec![
            "secure-mcp-server",
            "--api-key",
            KEY,
            "--api-key",
            OTHER_KEY,
            "--allow-dir",
            &root_arg,
        ];
        argv.extend_from_slice(extra);
        let mut config =
            Config::from_cli(Cli::try_parse_from(argv).expect("cli"), None).expect("config");
        edit(&mut config);
        let state = finish(AppState::from_config(&config).expect("state"));
        let app = App::new(router(state.clone(), limits(&config)));
        Self {
            app,
            state,
            outside,
            _base: base,
        }
    }

    /// The host path of the allowed directory (tests only; clients never see it).
    pub fn root(&self) -> std::path::PathBuf {
        self._base.path().join("data")
    }

    /// A harness around a state built elsewhere (custom tools, other configurations).
    pub fn from_state(state: AppState) -> Self {
        Self {
            app: App::new(router(
                state.clone(),
                secure_mcp_server::app::Limits::default(),
            )),
            state,
            outside: tempfile::tempdir().expect("tempdir"),
            _base: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Sends a request as a client on loopback would: with `Host` (unless the test set one)
    /// and a peer address.
    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if !request.headers().contains_key("host") {
            request.headers_mut().insert(
                "host",
                axum::http::HeaderValue::from_static("127.0.0.1:8080"),
            );
        }
        let peer = axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
        if request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_none()
        {
            request.extensions_mut().insert(peer);
        }
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// DELETE /mcp with `key`, naming `session` if given; the status.
    pub async fn delete(&self, key: &str, session: Option<&str>) -> StatusCode {
        let mut b = Request::delete("/mcp").header("authorization", format!("Bearer {key}"));
        if let Some(s) = session {
            b = b.header("mcp-session-id", s);
        }
        self.send(b.body(Body::empty()).expect("request"))
            .await
            .status
    }

    /// POST /mcp with the given headers and raw body.
    pub async fn post_raw(&self, headers: &[(&str, &str)], body: impl Into<Body>) -> Reply {
        let mut b = Request::post("/mcp");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(body.into()).expect("request")).await
    }

    /// A complete 2026-07-28 request: every header and `_meta` right.
    pub async fn modern(&self, method: &str, params: Value) -> Reply {
        self.modern_with(method, params, &[]).await
    }

    /// A 2026-07-28 request with headers replaced or added (`(name, None)` removes one).
    pub async fn modern_with(
        &self,
        method: &str,
        params: Value,
        overrides: &[(&str, Option<&str>)],
    ) -> Reply {
        self.modern_full(method, params, json!({}), overrides).await
    }

    /// A 2026-07-28 request declaring the given client capabilities.
    pub async fn modern_full(
        &self,
        method: &str,
        params: Value,
        capabilities: Value,
        overrides: &[(&str, Option<&str>)],
    ) -> Reply {
        let mut params = params;
        let mut meta = params.get("_meta").cloned().unwrap_or_else(|| json!({}));
        meta["io.modelcontextprotocol/protocolVersion"] = json!(MODERN);
        meta["io.modelcontextprotocol/clientCapabilities"] = capabilities;
        params["_meta"] = meta;
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .or_else(|| params.get("taskId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let auth = format!("Bearer {KEY}");
        let mut headers: Vec<(String, String)> = vec![
            ("authorization".into(), auth),
            ("content-type".into(), "application/json".into()),
            (
                "accept".into(),
                "application/json, text/event-stream".into(),
            ),
            ("mcp-protocol-version".into(), MODERN.into()),
            ("mcp-method".into(), method.into()),
        ];
        if let Some(name) = name {
            headers.push(("mcp-name".into(), name));
        }
        for (k, v) in overrides {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            if let Some(v) = v {
                headers.push(((*k).into(), (*v).into()));
            }
        }
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.post_raw(&pairs, body.to_string()).await
    }

    /// Calls a tool over 2026-07-28 and returns the `CallToolResult`.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Value {
        let reply = self
            .modern(
                "tools/call",
                json!({ "name": name, "arguments": arguments }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["result"].clone()
    }

    /// A legacy request with the given session (and key).
    pub async fn legacy(&self, key: &str, session: Option<&str>, body: Value) -> Reply {
        let auth = format!("Bearer {key}");
        let mut headers = vec![
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ];
        if let Some(s) = session {
            headers.push(("mcp-session-id", s));
        }
        self.post_raw(&headers, body.to_string()).await
    }

    /// Runs the legacy handshake; returns the session id.
    pub async fn initialize(&self, key: &str, version: &str) -> String {
        self.initialize_with(key, version, json!({})).await
    }

    /// Runs the legacy handshake declaring `capabilities`; returns the session id.
    pub async fn initialize_with(&self, key: &str, version: &str, capabilities: Value) -> String {
        let reply = self
            .legacy(
                key,
                None,
                json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                    "protocolVersion": version, "capabilities": capabilities,
                    "clientInfo": {"name":"it","version":"1"}}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let session = reply
            .header("mcp-session-id")
            .expect("session id")
            .to_owned();
        let ack = self
            .legacy(
                key,
                Some(&session),
                json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            )
            .await;
        assert_eq!(ack.status, StatusCode::ACCEPTED);
        assert!(ack.text.is_empty());
        session
    }
}

/// The text of the first content block of a tool result.
pub fn first_text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The built binary, running as a server on an ephemeral loopback port.
pub struct RunningServer {
    pub child: std::process::Child,
    pub addr: String,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line read so far.
    pub log: Vec<String>,
}

impl RunningServer {
    /// Starts the binary with `args` (plus `--bind 127.0.0.1:0`) and `env`, and waits for its
    /// listening line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Self::command(args, env);
        cmd.stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        Self::from_child(child, stderr)
    }

    /// Like [`Self::start`], with stderr on a pseudo-terminal (as when run by hand).
    pub fn start_on_terminal(args: &[&str], env: &[(&str, &str)]) -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.as_bytes()))
            .expect("open pty");
        let mut cmd = Self::command(args, env);
        cmd.stderr(slave);
        let child = cmd.spawn().expect("spawn");
        Self::from_child(child, std::fs::File::from(master))
    }

    pub fn command(args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_secure-mcp-server"));
        // Before a gateway's `-- COMMAND`, which takes everything after it.
        let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        cmd.args(&args[..split])
            .args(["--bind", "127.0.0.1:0"])
            .args(&args[split..])
            .env_remove("MCP_API_KEYS")
            .env_remove("MCP_API_KEY")
            .stdout(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn from_child(child: std::process::Child, stderr: impl std::io::Read + Send + 'static) -> Self {
        use std::io::BufRead;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                // a terminal ends lines with \r\n, and the log colours its fields there
                let line = strip_ansi(line.trim_end_matches('\r'));
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no listening line; log so far:\n{}", log.join("\n")));
            let found = line
                .split("listening on ")
                .nth(1)
                .and_then(|rest| rest.split("://").nth(1))
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned);
            log.push(line);
            if let Some(addr) = found {
                break addr;
            }
        };
        Self {
            child,
            addr,
            lines,
            log,
        }
    }

    /// `GET /metrics` with `key`: the text.
    pub async fn metrics(&self, client: &reqwest::Client, key: &str) -> String {
        client
            .get(format!("http://{}/metrics", self.addr))
            .bearer_auth(key)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Collects the stderr lines written so far.
    pub fn drain_log(&mut self) -> String {
        while let Ok(line) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> Option<i32> {
        for _ in 0..within.as_millis() / 20 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Sends a signal by name (`HUP`, `TERM`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// A 2026-07-28 `server/discover` with `key`; returns the status.
    pub async fn discover(&self, client: &reqwest::Client, key: &str) -> u16 {
        client
            .post(self.url())
            .bearer_auth(key)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "server/discover")
            .json(
                &json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{
                "io.modelcontextprotocol/protocolVersion":"2026-07-28",
                "io.modelcontextprotocol/clientCapabilities":{}}}}),
            )
            .send()
            .await
            .expect("send")
            .status()
            .as_u16()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The full stack on a real loopback socket, in this process: configured from `args` (after the
/// program name), with `limits` if given (else the configuration's). Stops when the sender is
/// dropped or used.
pub async fn serve_in_process(
    args: &[&str],
    limits: Option<secure_mcp_server::app::Limits>,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut argv = vec!["secure-mcp-server"];
    argv.extend_from_slice(args);
    let config = Config::from_cli(Cli::try_parse_from(argv).expect("cli"), None).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::from_config(&config).expect("state");
    let limits = limits.unwrap_or_else(|| secure_mcp_server::server::limits(&config));
    tokio::spawn(secure_mcp_server::server::serve(
        listener,
        state,
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}
