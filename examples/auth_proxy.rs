//! A loopback reverse proxy that adds `Authorization: Bearer <key>` to every request, for test
//! clients that cannot send headers of their own (the MCP conformance suites). Everything else
//! passes through unchanged in both directions, `Host` and `Origin` included, and response
//! bodies are streamed (SSE works).
//!
//! Usage: `MCP_PROXY_KEY=KEY cargo run --example auth_proxy -- UPSTREAM_BASE_URL [LISTEN_ADDR]`
//! (listen defaults to 127.0.0.1:0; the chosen address is printed on stdout).

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
struct Proxy {
    client: reqwest::Client,
    upstream: String,
    auth: String,
}

/// Headers that describe one hop, not the message.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "content-length"
    )
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = proxy
        .client
        .request(parts.method, format!("{}{path}", proxy.upstream));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name != header::AUTHORIZATION {
            upstream = upstream.header(name, value);
        }
    }
    let reply = match upstream
        .header(header::AUTHORIZATION, &proxy.auth)
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let mut response = Response::builder().status(reply.status().as_u16());
    for (name, value) in reply.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(reply.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(upstream), Ok(key)) = (args.next(), std::env::var("MCP_PROXY_KEY")) else {
        eprintln!("usage: MCP_PROXY_KEY=KEY auth_proxy UPSTREAM_BASE_URL [LISTEN_ADDR]");
        return ExitCode::from(64);
    };
    let listen: SocketAddr = match args.next().unwrap_or_else(|| "127.0.0.1:0".into()).parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("auth_proxy: bad listen address");
            return ExitCode::from(64);
        }
    };
    if !listen.ip().is_loopback() {
        eprintln!("auth_proxy: listens on loopback only");
        return ExitCode::from(64);
    }
    let Ok(client) = reqwest::Client::builder().build() else {
        return ExitCode::FAILURE;
    };
    let proxy = Proxy {
        client,
        upstream: upstream.trim_end_matches('/').to_owned(),
        auth: format!("Bearer {key}"),
    };
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return ExitCode::FAILURE;
    };
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let app = Router::new().fallback(forward).with_state(proxy);
        axum::serve(listener, app).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auth_proxy: {e}");
            ExitCode::FAILURE
        }
    }
}
