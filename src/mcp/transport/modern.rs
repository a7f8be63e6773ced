//! The 2026-07-28 era: every request stands alone. Its checks, in this order (the conformance
//! suite relies on the order): `_meta` has the protocol version and client capabilities (else
//! 400 `-32602`); the header equals the `_meta` version (else 400 `-32020`); the version is one
//! we speak (else 400 `-32022`); `Mcp-Method` and `Mcp-Name` agree with the body (else 400
//! `-32020`); a tool's `Mcp-Param` headers agree with its arguments. `Mcp-Session-Id` is
//! ignored.

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use super::execute::{precomputed, run};
use super::negotiate::Reply;
use super::reply::{accepted, rpc_error};
use super::streams::listen;
use crate::error::RpcError;
use crate::mcp::context::Call;
use crate::mcp::context::NoteCell;
use crate::mcp::headers::{self, HeaderValueOf, McpHeaders};
use crate::mcp::jsonrpc::{Message, Request};
use crate::mcp::method::Method;
use crate::mcp::version::{Era, ProtocolVersion};
use crate::security::auth::Authenticated;
use crate::state::AppState;

pub(super) const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

pub(super) fn meta_of(
    params: &serde_json::Map<String, Value>,
) -> Option<&serde_json::Map<String, Value>> {
    params.get("_meta").and_then(Value::as_object)
}

pub(super) async fn modern(
    state: &AppState,
    auth: &Authenticated,
    raw_headers: &HeaderMap,
    headers: &McpHeaders<'_>,
    message: Message,
    reply: Reply,
) -> Response {
    let request = match message {
        Message::Request(r) => r,
        // The 2026-07-28 core has no client notifications over HTTP; accept and ignore them.
        Message::Notification(_) => return accepted(),
        Message::Response { id, .. } => {
            return rpc_error(Some(&id), RpcError::UnexpectedResponse, Era::Modern);
        }
    };
    if let Err(e) = check_modern_request(headers, &request) {
        return rpc_error(Some(&request.id), e, Era::Modern);
    }
    // A tool the caller may not see has no headers to check: it is answered as unknown.
    if request.method == Method::ToolsCall
        && let Some(name) = request.params.get("name").and_then(Value::as_str)
        && auth.rules.allows_tool(name)
        && let Err(e) = headers::check_param_headers(
            raw_headers,
            state.server.param_headers(name),
            request.params.get("arguments"),
        )
    {
        return rpc_error(Some(&request.id), e, Era::Modern);
    }
    if request.method == Method::SubscriptionsListen {
        return listen(state, &request, auth);
    }
    if let Some(response) = precomputed(state, &request, Era::Modern, reply, &auth.rules) {
        return response;
    }
    let call = Call {
        era: Era::Modern,
        caller: auth.principal.clone(),
        session: None,
        sink: None,
        note: NoteCell::default(),
        rules: auth.rules.clone(),
        tasks: Some(state.tasks.clone()),
    };
    // Boxed: the precomputed path above does not carry this future's size.
    Box::pin(run(state, request, call, reply, None)).await
}

/// The 2026-07-28 request checks, in the order the module doc gives.
pub fn check_modern_request(headers: &McpHeaders<'_>, request: &Request) -> Result<(), RpcError> {
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
        HeaderValueOf::Value(h) if *h == meta_version => {}
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
