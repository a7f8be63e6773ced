//! The 2025 eras (2025-03-26 .. 2025-11-25): `initialize` negotiates and mints a session;
//! every later message must carry that session (400 without, 404 for an unknown, expired, ended
//! or foreign one). A header naming a revision we do not speak is 400. The header may differ
//! from the negotiated version (older clients send their initial version), as long as we speak
//! it. DELETE ends a session.

use std::sync::Arc;
use std::sync::atomic::Ordering;

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
use crate::fleet::sessions::{Ended, Remote};
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
        return match state
            .sessions
            .create_for(auth, version, capabilities.clone(), now)
        {
            Ok(session) => {
                if let Some(shared) = &state.shared_sessions
                    && shared
                        .publish(&session, &auth.principal, version, &capabilities)
                        .await
                    && let Ok((_, held)) = state.sessions.open(&session, &auth.principal, now)
                {
                    // Without Redis the session is this instance's own (see fleet::sessions).
                    held.recorded.store(true, Ordering::Relaxed);
                }
                let result = state.server.initialize_result(version);
                success(&request.id, result, reply.framing, Some(&session))
            }
            Err(e) => rpc_error(Some(&request.id), e, Era::Legacy),
        };
    }

    let (_, session) = match session_of(state, auth, headers, now).await {
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
                tasks: None,
            };
            // Boxed: the other paths do not carry this future's size.
            Box::pin(run(state, request, call, reply, Some(cancel))).await
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
/// In a fleet, Redis has the last word: a session ended elsewhere is dropped here, and one
/// minted elsewhere is taken in (see [`crate::fleet::sessions`]).
pub(super) async fn session_of(
    state: &AppState,
    auth: &Authenticated,
    headers: &McpHeaders<'_>,
    now: Instant,
) -> Result<(ProtocolVersion, Arc<SessionState>), RpcError> {
    let id = session_id(headers)?;
    let held = state.sessions.open(id, &auth.principal, now);
    let Some(shared) = &state.shared_sessions else {
        return held;
    };
    match shared.confirm(id, &auth.principal).await {
        Remote::Live {
            version,
            capabilities,
        } => {
            let (version, session) = match held {
                Ok(held) => held,
                Err(_) => state
                    .sessions
                    .adopt(id, auth, version, capabilities, Instant::now())?,
            };
            session.recorded.store(true, Ordering::Relaxed);
            Ok((version, session))
        }
        // A session minted while Redis was away is recorded now; one that was recorded has
        // expired or been ended elsewhere.
        Remote::Gone => match held {
            Ok((version, session)) if !session.recorded.load(Ordering::Relaxed) => {
                let capabilities = session.client_capabilities.clone();
                if shared
                    .publish(id, &auth.principal, version, &capabilities)
                    .await
                {
                    session.recorded.store(true, Ordering::Relaxed);
                }
                Ok((version, session))
            }
            _ => {
                state.sessions.forget(id);
                Err(RpcError::SessionNotFound)
            }
        },
        Remote::NotYours => Err(RpcError::SessionNotFound),
        Remote::Unknown => held,
    }
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
    let headers = McpHeaders::parse(&headers);
    let id = match session_id(&headers) {
        Ok(id) => id,
        Err(e) => return rpc_error(None, e, Era::Legacy),
    };
    let here = state.sessions.remove(id, &auth.principal);
    let result = match &state.shared_sessions {
        None => here,
        Some(shared) => match shared.end(id, &auth.principal).await {
            Ended::Everywhere => {
                // Held here by its owner or not at all: either way it is over.
                state.sessions.forget(id);
                Ok(())
            }
            Ended::NotYours => Err(RpcError::SessionNotFound),
            Ended::NoRecord | Ended::Unknown => here,
        },
    };
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => rpc_error(None, e, Era::Legacy),
    }
}
