//! Streamable HTTP on `/mcp`: content types, era selection, the checks each era demands,
//! sessions for the legacy era, and the JSON or SSE response.
//!
//! Era selection, per request (MCP 2026-07-28 "Backward compatibility"):
//! - an `MCP-Protocol-Version` header naming a 2025 revision → legacy;
//! - any other header value (2026-07-28, or unknown) → modern, whose checks then answer;
//! - no header → modern if `_meta` carries `io.modelcontextprotocol/protocolVersion`, else legacy.
//!
//! Modern checks, in this order (the conformance suite relies on the order): `_meta` has the
//! protocol version and client capabilities (else 400 `-32602`); the header equals the `_meta`
//! version (else 400 `-32020`); the version is one we speak (else 400 `-32022`); `Mcp-Method`
//! and `Mcp-Name` agree with the body (else 400 `-32020`). `Mcp-Session-Id` is ignored.
//!
//! Legacy: `initialize` negotiates and mints a session; every later message must carry that
//! session (400 without, 404 for an unknown, expired, ended or foreign one). A header naming a
//! revision we do not speak is 400. The header may differ from the negotiated version (older
//! clients send their initial version), as long as we speak it.
//!
//! `Accept` is read leniently: JSON is sent unless the client accepts only `text/event-stream`;
//! 406 only when it accepts neither. `Content-Type` must be `application/json` (415).
//! GET has no stream yet, so it is 405 with `Allow: POST, DELETE`; DELETE ends a session.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;

use crate::app::AppState;
use crate::error::{Rejection, RpcError};
use crate::mcp::headers::{self, HeaderValueOf, McpHeaders};
use crate::mcp::jsonrpc::{self, Message, Request, RequestId};
use crate::mcp::version::{Era, ProtocolVersion};
use crate::observability::audit::McpCall;
use crate::security::auth::Authenticated;

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// How the client wants a successful response framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Json,
    Sse,
}

/// Chooses the framing from `Accept` (see the module doc).
pub fn framing(headers: &HeaderMap) -> Result<Framing, Rejection> {
    let mut any_header = false;
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        any_header = true;
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                continue;
            }
            match media.as_str() {
                "*/*" => (json, sse) = (true, true),
                "application/json" | "application/*" => json = true,
                "text/event-stream" | "text/*" => sse = true,
                _ => {}
            }
        }
    }
    match (any_header, json, sse) {
        (false, _, _) | (_, true, _) => Ok(Framing::Json),
        (true, false, true) => Ok(Framing::Sse),
        (true, false, false) => Err(Rejection::NotAcceptable),
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// `POST /mcp`.
pub async fn post(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !is_json_content_type(&headers) {
        return Rejection::UnsupportedMediaType.into_response();
    }
    let framing = match framing(&headers) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Rejection::PayloadTooLarge.into_response();
        }
        Err(_) => return rpc_error(None, RpcError::InvalidRequest, Era::Legacy),
    };
    let mcp_headers = McpHeaders::parse(&headers);
    let message = match jsonrpc::parse(&body) {
        Ok(m) => m,
        Err(invalid) => return rpc_error(invalid.id.as_ref(), invalid.error, Era::Legacy),
    };
    let call = McpCall::of(&message);
    let mut response = match select_era(&mcp_headers, &message) {
        Era::Modern => modern(&state, &mcp_headers, message, framing).await,
        Era::Legacy => legacy(&state, &auth, &mcp_headers, message, framing).await,
    };
    if let Some(call) = call {
        response.extensions_mut().insert(call);
    }
    response
}

fn params_of(message: &Message) -> Option<&serde_json::Map<String, Value>> {
    match message {
        Message::Request(r) => Some(&r.params),
        Message::Notification(n) => Some(&n.params),
        Message::Response { .. } => None,
    }
}

fn meta_of(params: &serde_json::Map<String, Value>) -> Option<&serde_json::Map<String, Value>> {
    params.get("_meta").and_then(Value::as_object)
}

/// Picks the era of one message (see the module doc).
pub fn select_era(headers: &McpHeaders, message: &Message) -> Era {
    match &headers.protocol_version {
        HeaderValueOf::Value(v) => match ProtocolVersion::parse(v) {
            Some(version) => version.era(),
            None => Era::Modern,
        },
        HeaderValueOf::Invalid => Era::Modern,
        HeaderValueOf::Absent => {
            let has_modern_meta = params_of(message)
                .and_then(meta_of)
                .is_some_and(|m| m.contains_key(META_VERSION));
            if has_modern_meta {
                Era::Modern
            } else {
                Era::Legacy
            }
        }
    }
}

async fn modern(
    state: &AppState,
    headers: &McpHeaders,
    message: Message,
    framing: Framing,
) -> Response {
    let request = match message {
        Message::Request(r) => r,
        // The 2026-07-28 core has no client notifications over HTTP; accept and ignore them.
        Message::Notification(_) => return accepted(),
        Message::Response { id } => {
            return rpc_error(Some(&id), RpcError::UnexpectedResponse, Era::Modern);
        }
    };
    if let Err(e) = check_modern_request(headers, &request) {
        return rpc_error(Some(&request.id), e, Era::Modern);
    }
    match state.server.handle(&request, Era::Modern).await {
        Ok(result) => success(&request.id, result, framing, None),
        Err(e) => rpc_error(Some(&request.id), e, Era::Modern),
    }
}

/// The 2026-07-28 request checks, in the order the module doc gives.
pub fn check_modern_request(headers: &McpHeaders, request: &Request) -> Result<(), RpcError> {
    let meta = meta_of(&request.params).ok_or(RpcError::MissingMeta(
        "io.modelcontextprotocol/protocolVersion",
    ))?;
    let meta_version =
        meta.get(META_VERSION)
            .and_then(Value::as_str)
            .ok_or(RpcError::MissingMeta(
                "io.modelcontextprotocol/protocolVersion",
            ))?;
    if !meta.get(META_CAPABILITIES).is_some_and(Value::is_object) {
        return Err(RpcError::MissingMeta(
            "io.modelcontextprotocol/clientCapabilities",
        ));
    }
    match &headers.protocol_version {
        HeaderValueOf::Value(h) if h == meta_version => {}
        HeaderValueOf::Value(_) => {
            return Err(RpcError::HeaderMismatch(
                "MCP-Protocol-Version does not match _meta",
            ));
        }
        HeaderValueOf::Absent => {
            return Err(RpcError::HeaderMismatch(
                "MCP-Protocol-Version header is required",
            ));
        }
        HeaderValueOf::Invalid => {
            return Err(RpcError::HeaderMismatch(
                "MCP-Protocol-Version header is invalid",
            ));
        }
    }
    match ProtocolVersion::parse(meta_version) {
        Some(v) if v.era() == Era::Modern => {}
        _ => {
            return Err(RpcError::UnsupportedVersion {
                requested: meta_version.to_owned(),
            });
        }
    }
    headers::check_modern(headers, request)
}

async fn legacy(
    state: &AppState,
    auth: &Authenticated,
    headers: &McpHeaders,
    message: Message,
    framing: Framing,
) -> Response {
    let id = match &message {
        Message::Request(r) => Some(&r.id),
        _ => None,
    };
    match &headers.protocol_version {
        HeaderValueOf::Absent => {}
        HeaderValueOf::Value(v)
            if ProtocolVersion::parse(v).is_some_and(|v| v.era() == Era::Legacy) => {}
        _ => return rpc_error(id, RpcError::UnsupportedVersionHeader, Era::Legacy),
    }
    let now = Instant::now();

    if let Message::Request(request) = &message
        && request.method == "initialize"
    {
        let requested = request
            .params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let version = ProtocolVersion::negotiate_legacy(requested);
        return match state.sessions.create(auth.key_id.clone(), version, now) {
            Ok(session) => {
                let result = state.server.initialize_result(version);
                success(&request.id, result, framing, Some(&session))
            }
            Err(e) => rpc_error(Some(&request.id), e, Era::Legacy),
        };
    }

    let session = match &headers.session_id {
        HeaderValueOf::Value(s) => s,
        HeaderValueOf::Absent => return rpc_error(id, RpcError::SessionRequired, Era::Legacy),
        HeaderValueOf::Invalid => return rpc_error(id, RpcError::SessionNotFound, Era::Legacy),
    };
    if let Err(e) = state.sessions.touch(session, &auth.key_id, now) {
        return rpc_error(id, e, Era::Legacy);
    }
    match message {
        // notifications/initialized, notifications/cancelled, and answers to server requests.
        Message::Notification(_) | Message::Response { .. } => accepted(),
        Message::Request(request) => match state.server.handle(&request, Era::Legacy).await {
            Ok(result) => success(&request.id, result, framing, None),
            Err(e) => rpc_error(Some(&request.id), e, Era::Legacy),
        },
    }
}

/// `GET /mcp`: no standalone stream is offered.
pub async fn get() -> Response {
    Rejection::MethodNotAllowed {
        allow: "POST, DELETE",
    }
    .into_response()
}

/// `DELETE /mcp`: ends the caller's session.
pub async fn delete(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
) -> Response {
    let result = match McpHeaders::parse(&headers).session_id {
        HeaderValueOf::Value(id) => state.sessions.remove(&id, &auth.key_id),
        HeaderValueOf::Absent => Err(RpcError::SessionRequired),
        HeaderValueOf::Invalid => Err(RpcError::SessionNotFound),
    };
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => rpc_error(None, e, Era::Legacy),
    }
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

fn success(id: &RequestId, result: Value, framing: Framing, session: Option<&str>) -> Response {
    let body = jsonrpc::success_response(id, result);
    let mut response = match framing {
        Framing::Json => (StatusCode::OK, axum::Json(body)).into_response(),
        Framing::Sse => sse_single(&body),
    };
    if let Some(session) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        response.headers_mut().insert(headers::SESSION_ID, session);
    }
    response
}

/// A JSON-RPC error. Errors are always JSON: they carry their own HTTP status.
fn rpc_error(id: Option<&RequestId>, error: RpcError, era: Era) -> Response {
    let status = error.status(era);
    (status, axum::Json(error.to_body(id, era))).into_response()
}

/// One JSON-RPC message as a one-event SSE stream.
fn sse_single(message: &Value) -> Response {
    let body = format!("event: message\ndata: {message}\n\n");
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from(body))
        .unwrap_or_else(|_| Rejection::Internal.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn accept_is_lenient_but_not_blind() {
        let cases: [(&[&str], Result<Framing, Rejection>); 9] = [
            (&[], Ok(Framing::Json)),
            (&["*/*"], Ok(Framing::Json)),
            (&["application/json"], Ok(Framing::Json)),
            (&["application/json, text/event-stream"], Ok(Framing::Json)),
            (&["text/event-stream"], Ok(Framing::Sse)),
            (&["TEXT/EVENT-STREAM; charset=utf-8"], Ok(Framing::Sse)),
            (&["text/html"], Err(Rejection::NotAcceptable)),
            (
                &["application/json;q=0, text/event-stream"],
                Ok(Framing::Sse),
            ),
            (
                &["application/xml", "image/png"],
                Err(Rejection::NotAcceptable),
            ),
        ];
        for (values, expected) in cases {
            assert_eq!(framing(&accept(values)), expected, "{values:?}");
        }
    }

    #[test]
    fn content_type_must_be_json() {
        let mut h = HeaderMap::new();
        assert!(!is_json_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_json_content_type(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json_content_type(&h));
    }
}
