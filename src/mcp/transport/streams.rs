//! The long-lived streams: `subscriptions/listen` (2026-07-28), and a 2025-era session's
//! standalone `GET /mcp` stream, resumable with `Last-Event-ID`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::legacy::session_of;
use super::negotiate::{Accept, last_event_id};
use super::reply::{self, rpc_error, sse_event};
use super::sse;
use crate::error::{Rejection, RpcError};
use crate::mcp::events;
use crate::mcp::headers::{HeaderValueOf, McpHeaders};
use crate::mcp::jsonrpc::{self, Request};
use crate::mcp::tasks;
use crate::mcp::version::{Era, ProtocolVersion};
use crate::security::auth::Authenticated;
use crate::state::AppState;

/// The most task ids one `subscriptions/listen` may follow.
pub const MAX_LISTEN_TASKS: usize = 64;

/// `subscriptions/listen` (2026-07-28): an SSE stream of the changes the client asked for.
/// A caller whose policy denies resources hears nothing about them; `taskIds` (tasks
/// extension, declared by this request, else `-32021`) follows the caller's own tasks only:
/// ids it does not own are left out of the acknowledgement, as unknown ones are.
pub(super) fn listen(state: &AppState, request: &Request, auth: &Authenticated) -> Response {
    let resources = auth.rules.resources;
    let server = &state.server;
    let wanted = request
        .params
        .get("notifications")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let asks = |k: &str| wanted.get(k).and_then(Value::as_bool).unwrap_or(false);
    let task_ids = match listened_tasks(state, request, &wanted, auth) {
        Ok(ids) => ids,
        Err(e) => return rpc_error(Some(&request.id), e, Era::Modern),
    };
    let lc = server.lists_change();
    let filter = sse::Filter {
        tools: lc && asks("toolsListChanged"),
        prompts: lc && server.has_prompts() && asks("promptsListChanged"),
        resources: resources && lc && server.has_resources() && asks("resourcesListChanged"),
        uris: Some(if resources && server.supports_subscribe() {
            wanted
                .get("resourceSubscriptions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        }),
        tasks: (!task_ids.is_empty())
            .then(|| (Arc::from(auth.principal.binding()), task_ids.clone())),
    };
    if !lc && !server.supports_subscribe() && task_ids.is_empty() {
        return rpc_error(Some(&request.id), RpcError::MethodNotFound, Era::Modern);
    }
    let mut honored = serde_json::Map::new();
    for (key, on) in [
        ("toolsListChanged", filter.tools),
        ("promptsListChanged", filter.prompts),
        ("resourcesListChanged", filter.resources),
    ] {
        if on {
            honored.insert(key.into(), Value::Bool(true));
        }
    }
    if let Some(uris) = filter.uris.as_ref().filter(|u| !u.is_empty()) {
        honored.insert("resourceSubscriptions".into(), serde_json::json!(uris));
    }
    if !task_ids.is_empty() {
        honored.insert("taskIds".into(), serde_json::json!(task_ids));
    }
    let subscription_id = serde_json::to_value(&request.id).unwrap_or(Value::Null);
    let meta = serde_json::json!({ "io.modelcontextprotocol/subscriptionId": subscription_id });
    let ack = events::notification(
        "notifications/subscriptions/acknowledged",
        serde_json::json!({ "_meta": meta, "notifications": honored }),
    );
    // Subscribe before acknowledging so no change between the two is lost.
    let changes = server.changes().subscribe();
    let wrap_meta = meta.clone();
    let wrap = move |mut message: Value| {
        message["params"]["_meta"] = wrap_meta.clone();
        reply::event(&message)
    };
    // A graceful end (shutdown): `notifications/cancelled` for the listen request, then its
    // complete result (the two texts of the 2026-07-28 revision disagree; this satisfies both).
    let cancelled = events::notification(
        "notifications/cancelled",
        serde_json::json!({ "requestId": subscription_id, "reason": "server shutting down", "_meta": meta }),
    );
    let done = jsonrpc::success_response(
        &request.id,
        serde_json::json!({ "resultType": "complete", "_meta": meta }),
    );
    let closing = vec![reply::event(&cancelled), reply::event(&done)];
    sse::change_stream(
        vec![reply::event(&ack)],
        changes,
        filter,
        None,
        wrap,
        [CancellationToken::new(), state.shutdown.clone()],
        closing,
    )
}

/// The task ids a listen request asks about that the caller owns (at most
/// [`MAX_LISTEN_TASKS`]); `-32021` if it names any without declaring the extension.
fn listened_tasks(
    state: &AppState,
    request: &Request,
    wanted: &serde_json::Map<String, Value>,
    auth: &Authenticated,
) -> Result<Vec<String>, RpcError> {
    let Some(asked) = wanted.get("taskIds").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let capabilities = request
        .params
        .get("_meta")
        .and_then(|m| m.get(crate::mcp::dispatch::META_CAPABILITIES))
        .and_then(Value::as_object);
    if !capabilities.is_some_and(tasks::declared) {
        return Err(tasks::missing_extension());
    }
    Ok(asked
        .iter()
        .filter_map(Value::as_str)
        .take(MAX_LISTEN_TASKS)
        .filter(|id| state.tasks.get(id, &auth.principal, &auth.rules).is_some())
        .map(str::to_owned)
        .collect())
}

/// `GET /mcp`: the 2025-era standalone stream of a session (list changes and updates of
/// subscribed resources), resumable with `Last-Event-ID`. Without a session, or in
/// 2026-07-28, there is no such stream: 405.
pub async fn get(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = super::over_key_budget(&auth).await {
        return refused;
    }
    let mcp_headers = McpHeaders::parse(&headers);
    let modern = matches!(&mcp_headers.protocol_version, HeaderValueOf::Value(v)
        if ProtocolVersion::parse(v).is_none_or(|v| v.era() == Era::Modern));
    if modern || mcp_headers.session_id == HeaderValueOf::Absent {
        return Rejection::MethodNotAllowed {
            allow: "POST, DELETE",
        }
        .into_response();
    }
    if !Accept::parse(&headers).sse {
        return Rejection::NotAcceptable.into_response();
    }
    let (version, session) = match session_of(&state, &auth, &mcp_headers, Instant::now()).await {
        Ok(s) => s,
        Err(e) => return rpc_error(None, e, Era::Legacy),
    };
    let last = last_event_id(&headers);
    let Some(end) = session.open_get_stream(last.is_some()) else {
        return Rejection::Conflict.into_response();
    };
    let mut opening = Vec::new();
    if let Some(last) = last {
        for (event_id, message) in session.events_after(last) {
            opening.push(reply::event_with_id(event_id, &message));
        }
    } else if version >= ProtocolVersion::V2025_11_25 {
        // The priming event: an id to resume from, and how long to wait before reconnecting.
        let primed = session.record_event(Value::Null);
        opening.push(Bytes::from(sse_event(Some(primed), Some(3000), None)));
    }
    let server = &state.server;
    let lc = server.lists_change();
    let filter = sse::Filter {
        tools: lc,
        prompts: lc && server.has_prompts(),
        resources: auth.rules.resources && lc && server.has_resources(),
        uris: None,
        tasks: None,
    };
    let recorder = session.clone();
    let wrap = move |message: Value| {
        let event_id = recorder.record_event(message.clone());
        reply::event_with_id(event_id, &message)
    };
    sse::change_stream(
        opening,
        server.changes().subscribe(),
        filter,
        Some(session),
        wrap,
        [end, state.shutdown.clone()],
        Vec::new(),
    )
}
