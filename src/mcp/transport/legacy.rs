//! The 2025 eras (2025-03-26 .. 2025-11-25): `initialize` negotiates and mints a session;
//! every later message must carry that session (400 without, 404 for an unknown, expired, ended
//! or foreign one). A header naming a revision we do not speak is 400. The header may differ
//! from the negotiated version (older clients send their initial version), as long as we speak
//! it. DELETE ends a session.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;

use super::execute::{precomputed, run};
use super::negotiate::Reply;
use super::reply::{accepted, rpc_error, success};
use crate::error::RpcError;
use crate::mcp::context::Call;
use crate::mcp::context::NoteCell;
use crate::mcp::headers::{HeaderValueOf, McpHeaders};
use crate::mcp::jsonrpc::{Message, RequestId};
use crate::mcp::method::Method;
use crate::mcp::session::{SessionState, known_capabilities};
use crate::mcp::version::{Era, ProtocolVersion};
use crate::security::auth::Authenticated;
use crate::state::AppState;

pub(super) async fn legacy(
    state: &AppState,
    auth: &Authenticated,
    headers: &McpHeaders<'_>,
    message: Message,
    reply: Reply,
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
        && request.method == Method::Initialize
    {
        let requested = request
            .params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // Only the known capability names are kept, never the object as sent.
        let capabilities = known_capabilities(
            request
                .params
                .get("capabilities")
                .and_then(Value::as_object),
        );
        let version = ProtocolVersion::negotiate_legacy(requested);
        return match state.sessions.create_for(auth, version, capabilities, now) {
            Ok(session) => {
                let result = state.server.initialize_result(version);
                success(&request.id, result, reply.framing, Some(&session))
            }
            Err(e) => rpc_error(Some(&request.id), e, Era::Legacy),
        };
    }

    let (_, session) = match session_of(state, auth, headers, now) {
        Ok(s) => s,
        Err(e) => return rpc_error(id, e, Era::Legacy),
    };
    match message {
        Message::Notification(n) => {
            if n.method == Method::Cancelled
                && let Some(request_id) = n
                    .params
                    .get("requestId")
                    .and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok())
            {
                session.cancel(&request_id);
            }
            accepted()
        }
        Message::Response { id, outcome } => {
            session.answer(&id, outcome);
            accepted()
        }
        Message::Request(request) => {
            if let Some(response) = precomputed(state, &request, Era::Legacy, reply, &auth.rules) {
                return response;
            }
            let cancel = session.start(&request.id);
            let call = Call {
                era: Era::Legacy,
                caller: auth.principal.clone(),
                session: Some(session.clone()),
                sink: None,
                note: NoteCell::default(),
                rules: auth.rules.clone(),
            };
            run(state, request, call, reply, Some(cancel)).await
        }
    }
}

/// The session id a request names: 400 without the header, 404 for one that is not an id.
fn session_id<'h>(headers: &McpHeaders<'h>) -> Result<&'h str, RpcError> {
    match headers.session_id {
        HeaderValueOf::Value(id) => Ok(id),
        HeaderValueOf::Absent => Err(RpcError::SessionRequired),
        HeaderValueOf::Invalid => Err(RpcError::SessionNotFound),
    }
}

/// The caller's session: 400 without the header, 404 for an unknown, expired or foreign one.
pub(super) fn session_of(
    state: &AppState,
    auth: &Authenticated,
    headers: &McpHeaders<'_>,
    now: Instant,
) -> Result<(ProtocolVersion, Arc<SessionState>), RpcError> {
    state
        .sessions
        .open(session_id(headers)?, &auth.principal, now)
}

/// `DELETE /mcp`: ends the caller's session.
pub async fn delete(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = super::over_key_budget(&auth).await {
        return refused;
    }
    let result = session_id(&McpHeaders::parse(&headers))
        .and_then(|id| state.sessions.remove(id, &auth.principal));
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => rpc_error(None, e, Era::Legacy),
    }
}
