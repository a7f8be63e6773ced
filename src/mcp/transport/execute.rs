//! Runs one request: inline when its method never emits before its result, else in a task of
//! its own whose messages turn the response into an SSE stream (see [`super::sse`]); results
//! computed once at start are copied into the response.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::negotiate::Reply;
use super::reply::{raw_success, rpc_error, success};
use super::sse;
use crate::error::RpcError;
use crate::mcp::context::Call;
use crate::mcp::events;
use crate::mcp::jsonrpc::{self, Request, RequestId};
use crate::mcp::session::SessionState;
use crate::mcp::version::Era;
use crate::security::key_policy::KeyRules;
use crate::state::AppState;

/// A result computed once at start (`tools/list`, `server/discover`, ...), copied into the
/// response. Nothing runs, so there is nothing to track, cancel or note for the audit.
pub(super) fn precomputed(
    state: &AppState,
    request: &Request,
    era: Era,
    reply: Reply,
    rules: &KeyRules,
) -> Option<Response> {
    let raw = state.server.precomputed(request, era, rules)?;
    Some(raw_success(&request.id, &raw, reply.framing, None))
}

/// Runs a request: JSON if the handler emits nothing before its result, SSE otherwise (see
/// [`crate::mcp::sse`]).
pub(super) async fn run(
    state: &AppState,
    request: Request,
    mut call: Call,
    reply: Reply,
    cancel: Option<CancellationToken>,
) -> Response {
    let era = call.era;
    let id = request.id.clone();
    let note = call.note.clone();
    // Methods that never emit before their result run inline, without a task of their own.
    if !request.method.may_stream() {
        let _in_flight = call
            .session
            .clone()
            .map(|s| InFlight(s, request.id.clone()));
        let mut response = match state.server.handle(&request, call).await {
            Ok(result) => success(&id, result, reply.framing, None),
            Err(e) => rpc_error(Some(&id), e, era),
        };
        response.extensions_mut().insert(note);
        return response;
    }
    let method = request.method.clone();
    let (sink, events) = events::stream();
    if reply.stream {
        call.sink = Some(sink);
    }
    let server = state.server.clone();
    let (mut outcomes, guard) = sse::spawn_request(
        async move {
            // However the request ends (answer, cancellation, disconnect), its session forgets it.
            let _in_flight = call
                .session
                .clone()
                .map(|s| InFlight(s, request.id.clone()));
            server.handle(&request, call).await
        },
        events,
        cancel,
    );
    let mut response = match outcomes.recv().await {
        Some(sse::Outcome::Done(Ok(result))) => success(&id, result, reply.framing, None),
        Some(sse::Outcome::Done(Err(e))) => rpc_error(Some(&id), e, era),
        Some(sse::Outcome::Event(first)) => {
            let finish = move |result: Result<Value, RpcError>| match result {
                Ok(r) => jsonrpc::success_response(&id, r),
                Err(e) => jsonrpc::error_body(&e, Some(&id), era),
            };
            sse::request_stream(first, outcomes, guard, finish)
        }
        // Cancelled (2025 `notifications/cancelled`): no result is sent.
        Some(sse::Outcome::Cancelled) => StatusCode::NO_CONTENT.into_response(),
        // The handler panicked (the task died): a generic error, the server keeps serving.
        None => {
            tracing::error!(method = %method, "request handler panicked");
            rpc_error(Some(&id), RpcError::Internal, era)
        }
    };
    response.extensions_mut().insert(note);
    response
}

/// A 2025-era request in flight; dropping it tells the session the request ended.
struct InFlight(Arc<SessionState>, RequestId);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finish(&self.1);
    }
}
