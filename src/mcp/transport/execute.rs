//! Runs one request, inline in the request's own future: a result computed once at start is
//! copied into the response; a method that may emit before its result (progress, log
//! messages, a server-to-client request) runs inline too until it answers or emits, and only
//! when it emits does it move into a task of its own whose messages turn the response into an
//! SSE stream (see [`super::sse`]). Most calls emit nothing, so they cost no task, channel or
//! wake-up of another worker.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::negotiate::Reply;
use super::reply::{raw_success, rpc_error, success};
use super::sse;
use crate::error::RpcError;
use crate::mcp::context::{Call, NoteCell};
use crate::mcp::dispatch::McpServer;
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
/// [`super::sse`]).
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
    // A stream to emit on only where the call could emit (a channel is the largest
    // allocation of a call); without one, the messages it would send are not sent.
    let events = if reply.stream && McpServer::may_emit(&request, &call) {
        let (sink, events) = events::stream();
        call.sink = Some(sink);
        Some(events)
    } else {
        None
    };
    let server = state.server.clone();
    // The handler runs inline, in the request's own future, until it answers (JSON: the usual
    // case, with no task and no channel of its own) or emits a message first; then it moves,
    // already pinned, into a task that feeds the SSE stream. A call that cannot emit is not
    // even boxed. Dropping the response drops the handler in every case (2026-07-28
    // cancellation by disconnect). A panic is caught here and answered with a generic error;
    // the server keeps serving.
    let handler = std::panic::AssertUnwindSafe(async move {
        // However the request ends (answer, cancellation, disconnect), its session forgets it.
        let _in_flight = call
            .session
            .clone()
            .map(|s| InFlight(s, request.id.clone()));
        server.handle(&request, call).await
    })
    .catch_unwind()
    .map(move |outcome| {
        outcome.unwrap_or_else(|_| {
            tracing::error!(method = %method, "request handler panicked");
            Err(RpcError::Internal)
        })
    });
    let cancelled = async {
        match &cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let answer = |result: Result<Value, RpcError>, note| {
        let mut response = match result {
            Ok(result) => success(&id, result, reply.framing, None),
            Err(e) => rpc_error(Some(&id), e, era),
        };
        response.extensions_mut().insert(note);
        response
    };
    let Some(mut events) = events else {
        let handler = std::pin::pin!(handler);
        return tokio::select! {
            biased;
            // Cancelled (2025 `notifications/cancelled`): no result is sent.
            () = cancelled => cancelled_answer(note),
            result = handler => answer(result, note),
        };
    };
    let mut handler = Box::pin(handler);
    let first = tokio::select! {
        biased;
        () = cancelled => None,
        Some(first) = events.recv() => Some(Ok(first)),
        result = &mut handler => match events.try_recv() {
            // It emitted and answered in one step: the messages go first, as a stream.
            Ok(first) => Some(Err((first, result))),
            Err(_) => return answer(result, note),
        },
    };
    let (first, outcomes, guard) = match first {
        None => return cancelled_answer(note),
        Some(Ok(first)) => {
            let (outcomes, guard) = sse::spawn_request(handler, events, cancel);
            (first, outcomes, guard)
        }
        Some(Err((first, result))) => {
            let (outcomes, guard) = sse::spawn_request(std::future::ready(result), events, cancel);
            (first, outcomes, guard)
        }
    };
    let finish = move |result: Result<Value, RpcError>| match result {
        Ok(r) => jsonrpc::success_response(&id, r),
        Err(e) => jsonrpc::error_body(&e, Some(&id), era),
    };
    let mut response = sse::request_stream(first, outcomes, guard, finish);
    response.extensions_mut().insert(note);
    response
}

/// The answer to a cancelled request (2025 `notifications/cancelled`): no result is sent.
fn cancelled_answer(note: NoteCell) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
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
