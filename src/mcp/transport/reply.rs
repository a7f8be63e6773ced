//! Every answer `/mcp` gives to a message: 202 for notifications and responses, a result as
//! JSON or as a one-event SSE stream, a protocol error with its status, and the one encoder of
//! an SSE event that every stream here uses.

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::negotiate::Framing;
use crate::error::{ErrorCode, Rejection, RpcError};
use crate::mcp::headers;
use crate::mcp::jsonrpc::{self, RequestId};
use crate::mcp::version::Era;

/// One SSE event: an `id` when the stream is resumable, a `retry` hint, and the serialized
/// JSON-RPC message as `event: message` (no message: an empty `data` line, which a client
/// treats as nothing to deliver). Every event this server sends is written here.
pub fn sse_event(id: Option<u64>, retry_ms: Option<u32>, message: Option<&[u8]>) -> Vec<u8> {
    let data = message.unwrap_or_default();
    let mut out = Vec::with_capacity(data.len() + 48);
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        out.push(b'\n');
    }
    if let Some(retry) = retry_ms {
        out.extend_from_slice(b"retry: ");
        out.extend_from_slice(itoa::Buffer::new().format(retry).as_bytes());
        out.push(b'\n');
    }
    if message.is_some() {
        out.extend_from_slice(b"event: message\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out
}

/// One SSE event carrying a JSON-RPC message.
pub fn event(message: &Value) -> Bytes {
    Bytes::from(sse_event(None, None, Some(message.to_string().as_bytes())))
}

/// One SSE event with an id, from which a client may resume.
pub fn event_with_id(id: u64, message: &Value) -> Bytes {
    Bytes::from(sse_event(
        Some(id),
        None,
        Some(message.to_string().as_bytes()),
    ))
}

/// Tells nginx not to buffer a stream.
static ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Marks a response as an event stream that no cache or proxy holds back.
pub fn with_stream_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(ACCEL_BUFFERING.clone(), HeaderValue::from_static("no"));
    response
}

pub fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

pub fn success(id: &RequestId, result: Value, framing: Framing, session: Option<&str>) -> Response {
    // Written straight from the result: wrapping it in an envelope `Value` first (`json!`)
    // copied the whole result, and that copy was then serialized and dropped.
    match envelope(id, 256, |message| serde_json::to_writer(message, &result)) {
        Some(message) => respond(message, framing, session),
        None => Rejection::Internal.into_response(),
    }
}

/// A success whose `result` is already serialized.
pub fn raw_success(id: &RequestId, raw: &str, framing: Framing, session: Option<&str>) -> Response {
    let written = envelope(id, raw.len(), |message| {
        message.extend_from_slice(raw.as_bytes());
        Ok::<(), std::convert::Infallible>(())
    });
    match written {
        Some(message) => respond(message, framing, session),
        None => Rejection::Internal.into_response(),
    }
}

/// `{"jsonrpc":"2.0","id":ID,"result":RESULT}`, the result written by `write`; `size` is the
/// result's size (exact for a precomputed one, so the body takes the vector without another
/// allocation).
fn envelope<E>(
    id: &RequestId,
    size: usize,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Option<Vec<u8>> {
    const HEAD: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":";
    const RESULT: &[u8] = b",\"result\":";
    let mut number = itoa::Buffer::new();
    let quoted;
    let id: &[u8] = match id {
        RequestId::Number(n) => number.format(*n).as_bytes(),
        RequestId::String(_) => {
            quoted = serde_json::to_vec(id).ok()?;
            &quoted
        }
    };
    let mut message = Vec::with_capacity(HEAD.len() + id.len() + RESULT.len() + size + 1);
    message.extend_from_slice(HEAD);
    message.extend_from_slice(id);
    message.extend_from_slice(RESULT);
    write(&mut message).ok()?;
    message.push(b'}');
    Some(message)
}

/// A serialized JSON-RPC message as JSON or as a one-event SSE stream.
fn respond(message: Vec<u8>, framing: Framing, session: Option<&str>) -> Response {
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
pub fn rpc_error(id: Option<&RequestId>, error: RpcError, era: Era) -> Response {
    let status = error.status(era);
    let mut response = (status, axum::Json(jsonrpc::error_body(&error, id, era))).into_response();
    response.extensions_mut().insert(ErrorCode(error.code(era)));
    response
}

/// One serialized JSON-RPC message as a one-event SSE stream.
fn sse_raw(message: &[u8]) -> Response {
    with_stream_headers(Response::new(Body::from(sse_event(
        None,
        None,
        Some(message),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn events_are_written_one_way() {
        assert_eq!(
            sse_event(None, None, Some(b"{}")),
            b"event: message\ndata: {}\n\n"
        );
        assert_eq!(
            sse_event(Some(7), None, Some(b"{}")),
            b"id: 7\nevent: message\ndata: {}\n\n"
        );
        assert_eq!(
            sse_event(Some(1), Some(3000), None),
            b"id: 1\nretry: 3000\ndata: \n\n"
        );
    }

    #[tokio::test]
    async fn results_precomputed_or_not_are_framed_with_the_request_id() {
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
            let value = serde_json::from_str::<Value>(raw).expect("raw");
            for json in [
                raw_success(&id, raw, Framing::Json, None),
                success(&id, value.clone(), Framing::Json, None),
            ] {
                assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
                let body = json.into_body().collect().await.expect("body").to_bytes();
                let got: Value = serde_json::from_slice(&body).expect("json");
                assert_eq!(got, expected, "{id:?}");
            }
            assert_eq!(
                jsonrpc::success_response(&id, value.clone()),
                expected,
                "{id:?}"
            );

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
}
