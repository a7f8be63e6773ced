//! The whole router in-process with an arbitrary request (method, path, headers, body): never
//! a 500 (a panic caught by the catch-panic layer is one), and no answer names the host path of
//! the allowed directory.
#![no_main]

#[path = "common.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use clap::Parser;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use secure_mcp_server::app::{AppState, router};
use secure_mcp_server::config::{Cli, Config};
use tower::ServiceExt;

const KEY: &str = "fuzz-key-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1";

/// The router, boxed so the world can name it.
type App = tower::util::BoxCloneSyncService<
    axum::extract::Request,
    axum::response::Response,
    std::convert::Infallible,
>;

struct World {
    _dir: tempfile::TempDir,
    root: String,
    app: App,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("data");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("hello.txt"), "hello").expect("write");
        let _ = std::os::unix::fs::symlink("/etc", root.join("etc"));
        let root = root.canonicalize().expect("canonical");
        let root_arg = root.to_string_lossy().into_owned();
        let cli = Cli::try_parse_from([
            "secure-mcp-server",
            "--api-key",
            KEY,
            "--allow-dir",
            &root_arg,
            "--rate-limit",
            "1000000000",
            "--auth-fail-limit",
            "1000000000",
        ])
        .expect("cli");
        let config = Config::from_cli(cli, None).expect("config");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let app = runtime.block_on(async {
            let state = AppState::from_config(&config).expect("state");
            App::new(router(state, secure_mcp_server::server::limits(&config)))
        });
        World {
            _dir: dir,
            root: root_arg,
            app,
            runtime,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    // first line: method and path; then headers; a blank line; then the body
    let (head, body) = match data.windows(2).position(|p| p == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.splitn(2, |b| *b == b'\n');
    let start = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let (method, path) = start.split_once(' ').unwrap_or(("POST", start.as_str()));
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/mcp{path}")
    };
    let Ok(uri) = path.parse::<axum::http::Uri>() else {
        return;
    };
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_vec()))
        .expect("request");
    let headers = common::headers(lines.next().unwrap_or_default());
    request.headers_mut().extend(headers);
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let (status, bytes) = w.runtime.block_on(async {
        let response = w.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        // streams are cut after their first frame or a short wait
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        if let Ok(Some(Ok(frame))) =
            tokio::time::timeout(std::time::Duration::from_millis(50), body.frame()).await
            && let Ok(data) = frame.into_data()
        {
            bytes.extend_from_slice(&data);
        }
        (status, bytes)
    });
    assert_ne!(status.as_u16(), 500, "a panic or internal error");
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(&w.root), "the host path leaked: {text}");
});
