//! Streamable HTTP on `/mcp`, one file per step of a message's path: [`negotiate`] (`Accept`,
//! `Content-Type`), the era chosen here, [`modern`] or [`legacy`] (and its sessions),
//! [`execute`], [`streams`] (GET and `subscriptions/listen`, over [`sse`]), and [`reply`],
//! which writes every answer.
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
//! GET opens a 2025-era session's standalone stream (405 without a session or in 2026-07-28);
//! DELETE ends a session.

pub mod execute;
pub mod legacy;
pub mod modern;
pub mod negotiate;
pub mod reply;
pub mod sse;
pub mod streams;

use std::convert::Infallible;
use std::task::Poll;

use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;

use crate::error::{Rejection, RpcError};
use crate::mcp::context::McpCall;
use crate::mcp::headers::{HeaderValueOf, McpHeaders};
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::version::{Era, ProtocolVersion};
use crate::security::auth::Authenticated;
use crate::security::key_policy::{PolicyBook, PolicyDecision};
use crate::state::AppState;

pub use legacy::delete;
pub use modern::check_modern_request;
use negotiate::{Reply, declared_length, is_json_content_type};
use reply::rpc_error;
pub use streams::get;

/// 429 (marked for the audit) when the caller's per-key request budget is spent; counts the
/// request otherwise (see [`crate::security::key_policy`]).
async fn over_key_budget(auth: &Authenticated) -> Option<Response> {
    let now = tokio::time::Instant::now();
    let rejection = PolicyBook::admit(&auth.rules, &auth.principal, now)
        .await
        .err()?;
    let mut response = rejection.into_response();
    response
        .extensions_mut()
        .insert(PolicyDecision::KEY_RATE_LIMITED);
    Some(response)
}

/// `POST /mcp` as a service of its own: [`crate::app::router`] sends these requests here
/// directly, past axum's routing, behind the same Origin and key policies as the other `/mcp`
/// methods.
#[derive(Debug, Clone)]
pub struct McpPost {
    pub state: AppState,
    /// `--max-body`: a longer body is 413.
    pub max_body: usize,
}

impl tower::Service<axum::extract::Request> for McpPost {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        let (state, max_body) = (self.state.clone(), self.max_body);
        Box::pin(async move { Ok(post(state, request, max_body).await) })
    }
}

/// `POST /mcp`, for a request that passed the key policy. The headers are checked before the
/// body is read.
async fn post(state: AppState, request: axum::extract::Request, max_body: usize) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(auth) = parts.extensions.remove::<Authenticated>() else {
        return Rejection::Internal.into_response();
    };
    let headers = parts.headers;
    if !is_json_content_type(&headers) {
        return Rejection::UnsupportedMediaType.into_response();
    }
    let reply = match Reply::negotiate(&headers) {
        Ok(reply) => reply,
        Err(r) => return r.into_response(),
    };
    // A declared length over the limit is refused before a byte of the body is waited for.
    if declared_length(&headers).is_some_and(|n| n > max_body as u64) {
        return Rejection::PayloadTooLarge.into_response();
    }
    let body = match Limited::new(body, max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Rejection::PayloadTooLarge.into_response();
        }
        Err(_) => return rpc_error(None, RpcError::InvalidRequest, Era::Legacy),
    };
    let mcp_headers = McpHeaders::parse(&headers);
    let message = match jsonrpc::parse(&body) {
        Ok(m) => m,
        Err(invalid) => return rpc_error(invalid.id.as_ref(), invalid.error, Era::Legacy),
    };
    let mut call = McpCall::of(&message);
    // The key's own budget: every message but an answer to the server counts.
    if !matches!(message, Message::Response { .. })
        && let Some(mut refused) = over_key_budget(&auth).await
    {
        if let Some(call) = call {
            refused.extensions_mut().insert(call);
        }
        return refused;
    }
    let era = select_era(&mcp_headers, &message);
    if let Some(c) = call.as_mut() {
        c.era = Some(era);
    }
    let mut response = match era {
        Era::Modern => modern::modern(&state, &auth, &headers, &mcp_headers, message, reply).await,
        Era::Legacy => legacy::legacy(&state, &auth, &mcp_headers, message, reply).await,
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

/// Picks the era of one message (see the module doc).
pub fn select_era(headers: &McpHeaders<'_>, message: &Message) -> Era {
    match &headers.protocol_version {
        HeaderValueOf::Value(v) => match ProtocolVersion::parse(v) {
            Some(version) => version.era(),
            None => Era::Modern,
        },
        HeaderValueOf::Invalid => Era::Modern,
        HeaderValueOf::Absent => {
            let has_modern_meta = params_of(message)
                .and_then(modern::meta_of)
                .is_some_and(|m| m.contains_key(modern::META_VERSION));
            if has_modern_meta {
                Era::Modern
            } else {
                Era::Legacy
            }
        }
    }
}
