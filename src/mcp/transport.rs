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
//! `Accept` is read leniently: a single answer is JSON unless the client accepts only
//! `text/event-stream`; a request that emits messages before its result is streamed as SSE when
//! the client accepts it (otherwise those messages are dropped); 406 only when the client
//! accepts neither. `Content-Type` must be `application/json` (415).
//! GET opens a 2025-era session's standalone stream (405 without a session or in 2026-07-28);
//! DELETE ends a session.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use tokio::time::Instant;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::Poll;

use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::error::{ErrorCode, Rejection, RpcError};
use crate::mcp::dispatch::{Call, McpServer};
use crate::mcp::events;
use crate::mcp::headers::{self, HeaderValueOf, McpHeaders};
use crate::mcp::jsonrpc::{self, Message, Request, RequestId};
use crate::mcp::session::{SessionState, known_capabilities};
use crate::mcp::sse;
use crate::mcp::version::{Era, ProtocolVersion};
use crate::observability::audit::{McpCall, NoteCell};
use crate::security::auth::Authenticated;

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// How the client wants a single-message response framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Json,
    Sse,
}

/// Whether the client accepts an SSE stream (so messages may precede a result).
pub fn accepts_sse(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|range| {
                let media = range
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                matches!(media.as_str(), "text/event-stream" | "text/*" | "*/*")
            })
        })
    })
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

/// Whether `Content-Type` is `application/json` (parameters such as `charset` allowed).
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
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
    let framing = match framing(&headers) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let reply = Reply {
        framing,
        stream: accepts_sse(&headers),
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
    let era = select_era(&mcp_headers, &message);
    if let Some(c) = call.as_mut() {
        c.era = Some(era);
    }
    let mut response = match era {
        Era::Modern => modern(&state, &auth, &headers, &mcp_headers, message, reply).await,
        Era::Legacy => legacy(&state, &auth, &mcp_headers, message, reply).await,
    };
    if let Some(call) = call {
        response.extensions_mut().insert(call);
    }
    response
}

/// The `Content-Length` a request declares (hyper has already refused one that does not parse
/// or that disagrees with another).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
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
pub fn select_era(headers: &McpHeaders<'_>, message: &Message) -> Era {
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

/// How a response may be framed.
#[derive(Debug, Clone, Copy)]
struct Reply {
    framing: Framing,
    /// The client accepts a stream of messages before the result.
    stream: bool,
}

async fn modern(
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
    if request.method == "tools/call"
        && let Some(name) = request.params.get("name").and_then(Value::as_str)
        && let Err(e) = headers::check_param_headers(
            raw_headers,
            state.server.param_headers(name),
            request.params.get("arguments"),
        )
    {
        return rpc_error(Some(&request.id), e, Era::Modern);
    }
    if request.method == "subscriptions/listen" {
        return listen(state, &request);
    }
    if let Some(response) = precomputed(state, &request, Era::Modern, reply) {
        return response;
    }
    let call = Call {
        era: Era::Modern,
        caller: auth.key_id.clone(),
        session: None,
        sink: None,
        note: NoteCell::default(),
    };
    run(state, request, call, reply, None).await
}

/// A result computed once at start (`tools/list`, `server/discover`, ...), copied into the
/// response. Nothing runs, so there is nothing to track, cancel or note for the audit.
fn precomputed(state: &AppState, request: &Request, era: Era, reply: Reply) -> Option<Response> {
    let raw = state.server.precomputed(request, era)?;
    Some(raw_success(&request.id, &raw, reply.framing, None))
}

/// Runs a request: JSON if the handler emits nothing before its result, SSE otherwise (see
/// [`crate::mcp::sse`]).
async fn run(
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
    if !McpServer::may_stream(&request.method) {
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
                Err(e) => e.to_body(Some(&id), era),
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

/// `subscriptions/listen` (2026-07-28): an SSE stream of the changes the client asked for.
fn listen(state: &AppState, request: &Request) -> Response {
    let server = &state.server;
    let wanted = request
        .params
        .get("notifications")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let asks = |k: &str| wanted.get(k).and_then(Value::as_bool).unwrap_or(false);
    let lc = server.lists_change();
    let filter = sse::Filter {
        tools: lc && asks("toolsListChanged"),
        prompts: lc && server.has_prompts() && asks("promptsListChanged"),
        resources: lc && server.has_resources() && asks("resourcesListChanged"),
        uris: Some(if server.supports_subscribe() {
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
    };
    if !lc && !server.supports_subscribe() {
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
        sse::event(&message)
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
    let closing = vec![sse::event(&cancelled), sse::event(&done)];
    sse::change_stream(
        vec![sse::event(&ack)],
        changes,
        filter,
        None,
        wrap,
        [CancellationToken::new(), state.shutdown.clone()],
        closing,
    )
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

async fn legacy(
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
        && request.method == "initialize"
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
            if n.method == "notifications/cancelled"
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
            if let Some(response) = precomputed(state, &request, Era::Legacy, reply) {
                return response;
            }
            let cancel = session.start(&request.id);
            let call = Call {
                era: Era::Legacy,
                caller: auth.key_id.clone(),
                session: Some(session.clone()),
                sink: None,
                note: NoteCell::default(),
            };
            run(state, request, call, reply, Some(cancel)).await
        }
    }
}

/// The caller's session: 400 without the header, 404 for an unknown, expired or foreign one.
fn session_of(
    state: &AppState,
    auth: &Authenticated,
    headers: &McpHeaders<'_>,
    now: Instant,
) -> Result<(ProtocolVersion, Arc<SessionState>), RpcError> {
    match &headers.session_id {
        HeaderValueOf::Value(s) => state.sessions.open(s, &auth.key_id, now),
        HeaderValueOf::Absent => Err(RpcError::SessionRequired),
        HeaderValueOf::Invalid => Err(RpcError::SessionNotFound),
    }
}

/// The `Last-Event-ID` a resuming client sends: one of the event ids this server hands out (an
/// unsigned integer); anything else is no resumption.
pub fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// `GET /mcp`: the 2025-era standalone stream of a session (list changes and updates of
/// subscribed resources), resumable with `Last-Event-ID`. Without a session, or in
/// 2026-07-28, there is no such stream: 405.
pub async fn get(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
) -> Response {
    let mcp_headers = McpHeaders::parse(&headers);
    let modern = matches!(&mcp_headers.protocol_version, HeaderValueOf::Value(v)
        if ProtocolVersion::parse(v).is_none_or(|v| v.era() == Era::Modern));
    if modern || mcp_headers.session_id == HeaderValueOf::Absent {
        return Rejection::MethodNotAllowed {
            allow: "POST, DELETE",
        }
        .into_response();
    }
    if !accepts_sse(&headers) {
        return Rejection::NotAcceptable.into_response();
    }
    let (version, session) = match session_of(&state, &auth, &mcp_headers, Instant::now()) {
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
            opening.push(sse::event_with_id(event_id, &message));
        }
    } else if version >= ProtocolVersion::V2025_11_25 {
        // The priming event: an id to resume from, and how long to wait before reconnecting.
        let primed = session.record_event(Value::Null);
        opening.push(Bytes::from(format!(
            "id: {primed}\nretry: 3000\ndata: \n\n"
        )));
    }
    let server = &state.server;
    let lc = server.lists_change();
    let filter = sse::Filter {
        tools: lc,
        prompts: lc && server.has_prompts(),
        resources: lc && server.has_resources(),
        uris: None,
    };
    let recorder = session.clone();
    let wrap = move |message: Value| {
        let event_id = recorder.record_event(message.clone());
        sse::event_with_id(event_id, &message)
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

/// `DELETE /mcp`: ends the caller's session.
pub async fn delete(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
) -> Response {
    let result = match McpHeaders::parse(&headers).session_id {
        HeaderValueOf::Value(id) => state.sessions.remove(id, &auth.key_id),
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

/// A success whose `result` is already serialized.
fn raw_success(id: &RequestId, raw: &str, framing: Framing, session: Option<&str>) -> Response {
    const HEAD: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":";
    const RESULT: &[u8] = b",\"result\":";
    let mut number = itoa::Buffer::new();
    let quoted;
    let id: &[u8] = match id {
        RequestId::Number(n) => number.format(*n).as_bytes(),
        RequestId::String(_) => match serde_json::to_vec(id) {
            Ok(v) => {
                quoted = v;
                &quoted
            }
            Err(_) => return Rejection::Internal.into_response(),
        },
    };
    // Exactly the size of the message, so the body takes the vector without another allocation.
    let mut message = Vec::with_capacity(HEAD.len() + id.len() + RESULT.len() + raw.len() + 1);
    message.extend_from_slice(HEAD);
    message.extend_from_slice(id);
    message.extend_from_slice(RESULT);
    message.extend_from_slice(raw.as_bytes());
    message.push(b'}');
    let mut response = match framing {
        Framing::Json => {
            let mut response = Response::new(Body::from(message));
            let headers = response.headers_mut();
            // Room for what the layers add on the way out (request id, `Vary`): one allocation.
            headers.reserve(4);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Framing::Sse => sse_raw(&message),
    };
    if let Some(session) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        response.headers_mut().insert(headers::SESSION_ID, session);
    }
    response
}

/// A JSON-RPC error. Errors are always JSON: they carry their own HTTP status.
fn rpc_error(id: Option<&RequestId>, error: RpcError, era: Era) -> Response {
    let status = error.status(era);
    let mut response = (status, axum::Json(error.to_body(id, era))).into_response();
    response.extensions_mut().insert(ErrorCode(error.code(era)));
    response
}

/// One JSON-RPC message as a one-event SSE stream.
fn sse_single(message: &Value) -> Response {
    sse_raw(message.to_string().as_bytes())
}

/// One serialized JSON-RPC message as a one-event SSE stream.
fn sse_raw(message: &[u8]) -> Response {
    let mut body = Vec::with_capacity(message.len() + 24);
    body.extend_from_slice(b"event: message\ndata: ");
    body.extend_from_slice(message);
    body.extend_from_slice(b"\n\n");
    sse::with_stream_headers(Response::new(Body::from(body)))
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

    #[tokio::test]
    async fn precomputed_results_are_framed_with_the_request_id() {
        let raw = r#"{"tools":[{"name":"a\"b"}]}"#;
        let ids = [
            RequestId::Number(i64::MIN),
            RequestId::Number(7),
            RequestId::String(String::new()),
            RequestId::String("q\"\\\n\u{2028}é".into()),
        ];
        for id in ids {
            let expected = serde_json::json!({
                "jsonrpc": "2.0",
                "id": id,
                "result": serde_json::from_str::<Value>(raw).expect("raw"),
            });
            let json = raw_success(&id, raw, Framing::Json, None);
            assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
            let body = json.into_body().collect().await.expect("body").to_bytes();
            let got: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(got, expected, "{id:?}");

            let sse = raw_success(&id, raw, Framing::Sse, Some("s1"));
            assert_eq!(sse.headers()[headers::SESSION_ID], "s1");
            let body = sse.into_body().collect().await.expect("body").to_bytes();
            let text = std::str::from_utf8(&body).expect("utf-8");
            let data = text
                .strip_prefix("event: message\ndata: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .expect("one event");
            let got: Value = serde_json::from_str(data).expect("json");
            assert_eq!(got, expected, "{id:?}");
        }
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
