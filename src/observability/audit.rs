//! One audit event per request, and a distinct security event for refusals that matter.
//!
//! The audit event (tracing target `audit`) records: client address, key id (never the key),
//! HTTP method and path, MCP method and tool/resource name, status, outcome and latency.
//! Failed authentication is also a `security` event, so it can be counted and alerted on
//! separately.
//!
//! Client-supplied strings (the MCP method and name) are cut to [`MAX_FIELD`] characters and
//! logged with `Debug` formatting, which escapes newlines and control characters, so a client
//! cannot forge a log line.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;
use tokio::time::Instant;

use crate::mcp::jsonrpc::Message;
use crate::security::auth::Authenticated;
use crate::security::client_ip::client_ip;

/// The longest client-supplied string kept in an audit event.
pub const MAX_FIELD: usize = 256;

/// What an MCP message asked for, attached to the response for the audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCall {
    pub method: String,
    /// The tool or prompt name, or the resource URI.
    pub name: Option<String>,
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_FIELD).collect()
}

impl McpCall {
    pub fn of(message: &Message) -> Option<Self> {
        let (method, params) = match message {
            Message::Request(r) => (&r.method, &r.params),
            Message::Notification(n) => (&n.method, &n.params),
            Message::Response { .. } => return None,
        };
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .map(cut);
        Some(Self {
            method: cut(method),
            name,
        })
    }
}

/// The outcome word of an audit event.
pub fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "ok",
        401 => "unauthorized",
        403 => "forbidden",
        413 => "too_large",
        429 => "rate_limited",
        400..=499 => "invalid",
        _ => "error",
    }
}

/// Middleware: logs one audit event per request once the response is known.
pub async fn audit(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let client = client_ip(request.extensions());
    let http_method = request.method().clone();
    let path = cut(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let key_id = response
        .extensions()
        .get::<Authenticated>()
        .map(|a| a.key_id.to_string());
    let call = response.extensions().get::<McpCall>();
    let client = client.map(|c| c.to_string());
    tracing::info!(
        target: "audit",
        client = client.as_deref().unwrap_or("-"),
        key_id = key_id.as_deref().unwrap_or("-"),
        http_method = %http_method,
        path = ?path,
        mcp_method = ?call.map(|c| c.method.as_str()),
        name = ?call.and_then(|c| c.name.as_deref()),
        status = status.as_u16(),
        outcome = outcome(status),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    if status == StatusCode::UNAUTHORIZED {
        tracing::warn!(
            target: "security",
            event = "auth_failed",
            client = client.as_deref().unwrap_or("-"),
            path = ?path,
            "authentication failed"
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc;

    #[test]
    fn calls_record_method_and_name_cut_to_size() {
        let long = "x".repeat(1000);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{long}"}}}}"#
        );
        let m = jsonrpc::parse(body.as_bytes()).expect("parse");
        let call = McpCall::of(&m).expect("call");
        assert_eq!(call.method, "tools/call");
        assert_eq!(call.name.map(|n| n.len()), Some(MAX_FIELD));
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome(StatusCode::OK), "ok");
        assert_eq!(outcome(StatusCode::ACCEPTED), "ok");
        assert_eq!(outcome(StatusCode::UNAUTHORIZED), "unauthorized");
        assert_eq!(outcome(StatusCode::NOT_FOUND), "invalid");
        assert_eq!(outcome(StatusCode::INTERNAL_SERVER_ERROR), "error");
    }
}
