//! The JSON-RPC 2.0 envelope: one parse of the body into a typed [`Message`], and the two
//! response shapes.
//!
//! Decisions:
//! - The body is parsed once: the envelope into its fields, `params`, `result` and `error`
//!   into `serde_json::Value`s; serde_json's recursion limit (128) turns an absurdly nested body
//!   into a parse error instead of a stack overflow.
//! - A member given twice (`"method"` twice, say) is refused as an invalid request: JSON leaves
//!   its meaning open, and two readers could take different ones.
//! - A JSON array (a batch) is refused: batching left MCP in 2025-06-18 and this server does not
//!   process it for any revision (one request per POST keeps rate limits and audit exact).
//! - A request `id` must be a string or an integer; `null`, floats and objects are invalid.
//! - `params`, when present, must be an object (MCP never uses positional params).
//! - An error whose `id` could not be read omits `id`, as the MCP schema allows.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::mcp::method::Method;
use crate::mcp::version::Era;

/// A JSON-RPC request id: a string or an integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    String(String),
}

impl RequestId {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::String(s.clone())),
            Value::Number(n) => n.as_i64().map(Self::Number),
            _ => None,
        }
    }
}

/// A request: it expects a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub method: Method,
    pub params: Map<String, Value>,
}

/// A notification: no id, no response.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: Method,
    pub params: Map<String, Value>,
}

/// One JSON-RPC message as received.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    /// A client's answer to a server-to-client request: its `result`, or its `error`.
    Response {
        id: RequestId,
        outcome: Result<Value, Value>,
    },
}

/// Why a body is not a usable message; the id is kept when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub id: Option<RequestId>,
    pub error: RpcError,
}

impl Invalid {
    fn new(id: Option<RequestId>, error: RpcError) -> Self {
        Self { id, error }
    }
}

/// The members of a JSON-RPC object this server reads. The envelope is read into fields, not a
/// map: its member names are matched, never copied.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "present")]
    jsonrpc: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    method: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
}

/// A member that is present is `Some`, even when it is `null` (`"id": null` is an invalid id,
/// not a missing one).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Parses one HTTP body into one message.
pub fn parse(body: &[u8]) -> Result<Message, Invalid> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let envelope = if first == Some(&b'{') {
        serde_json::from_slice::<Envelope>(body).map_err(|e| {
            // A member given twice is well-formed JSON with an ambiguous meaning: refused.
            let error = if e.is_data() {
                RpcError::InvalidRequest
            } else {
                RpcError::Parse
            };
            Invalid::new(None, error)
        })?
    } else {
        // Not an object: say whether it is JSON at all, and whether it is a batch.
        let value: Value =
            serde_json::from_slice(body).map_err(|_| Invalid::new(None, RpcError::Parse))?;
        let error = if value.is_array() {
            RpcError::Batch
        } else {
            RpcError::InvalidRequest
        };
        return Err(Invalid::new(None, error));
    };

    let id = match &envelope.id {
        None => None,
        Some(v) => match RequestId::from_value(v) {
            Some(id) => Some(id),
            None => return Err(Invalid::new(None, RpcError::InvalidRequest)),
        },
    };
    let invalid = |id: &Option<RequestId>| Invalid::new(id.clone(), RpcError::InvalidRequest);

    if envelope.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(&id));
    }

    let method = match envelope.method {
        Some(Value::String(m)) => Some(Method::from_name(m)),
        Some(_) => return Err(invalid(&id)),
        None => None,
    };
    let params = match envelope.params {
        None => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid(&id)),
    };

    match (method, id) {
        (Some(method), Some(id)) => Ok(Message::Request(Request { id, method, params })),
        (Some(method), None) => Ok(Message::Notification(Notification { method, params })),
        (None, Some(id)) if envelope.result.is_some() || envelope.error.is_some() => {
            let outcome = match envelope.result {
                Some(result) => Ok(result),
                None => Err(envelope.error.unwrap_or(Value::Null)),
            };
            Ok(Message::Response { id, outcome })
        }
        (None, id) => Err(invalid(&id)),
    }
}

/// `{"jsonrpc":"2.0","id":…,"result":…}`
pub fn success_response(id: &RequestId, result: Value) -> Value {
    // Built by hand: `json!` would copy `result` (it serializes every value it is given).
    let mut message = serde_json::Map::with_capacity(3);
    message.insert("jsonrpc".into(), Value::from("2.0"));
    message.insert("id".into(), serde_json::to_value(id).unwrap_or(Value::Null));
    message.insert("result".into(), result);
    Value::Object(message)
}

/// `{"jsonrpc":"2.0","id":…,"error":…}`, without `id` when it is unknown.
pub fn error_response(id: Option<&RequestId>, error: Value) -> Value {
    match id {
        Some(id) => json!({ "jsonrpc": "2.0", "id": id, "error": error }),
        None => json!({ "jsonrpc": "2.0", "error": error }),
    }
}

/// The JSON-RPC error response object for a protocol error, in the era's codes.
pub fn error_body(error: &RpcError, id: Option<&RequestId>, era: Era) -> Value {
    let mut object = json!({ "code": error.code(era), "message": error.to_string() });
    if let Some(data) = error.data() {
        object["data"] = data;
    }
    error_response(id, object)
}

/// A required string parameter, or `-32602` with `message`.
pub fn string_param<'a>(
    params: &'a Map<String, Value>,
    key: &str,
    message: &'static str,
) -> Result<&'a str, RpcError> {
    params
        .get(key)
        .and_then(Value::as_str)
        .ok_or(RpcError::InvalidParams(message.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> Invalid {
        parse(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn parses_requests_notifications_and_responses() {
        let m = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).expect("request");
        assert!(matches!(
            m,
            Message::Request(Request {
                id: RequestId::Number(1),
                ..
            })
        ));
        let m =
            parse(br#"{"jsonrpc":"2.0","id":"a","method":"x","params":{"k":1}}"#).expect("request");
        match m {
            Message::Request(r) => {
                assert_eq!(r.id, RequestId::String("a".into()));
                assert_eq!(r.params["k"], 1);
            }
            other => panic!("{other:?}"),
        }
        let m = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .expect("notification");
        assert!(matches!(m, Message::Notification(_)));
        let m = parse(br#"{"jsonrpc":"2.0","id":5,"result":{}}"#).expect("response");
        assert_eq!(
            m,
            Message::Response {
                id: RequestId::Number(5),
                outcome: Ok(json!({}))
            }
        );
    }

    #[test]
    fn rejects_malformed_envelopes_with_the_right_error() {
        use RpcError::{Batch, InvalidRequest, Parse};
        let n = |n| Some(RequestId::Number(n));
        let cases: &[(&str, Option<RequestId>, RpcError)] = &[
            ("{", None, Parse),
            ("", None, Parse),
            (r#"{"jsonrpc":"2.0","id":1,"method":"ping"} x"#, None, Parse),
            (r#"{"jsonrpc":"2.0","id":1,"method":"ping""#, None, Parse),
            ("[]", None, Batch),
            (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, None, Batch),
            ("42", None, InvalidRequest),
            // null, float and object ids
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
                None,
                InvalidRequest,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
                None,
                InvalidRequest,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
                None,
                InvalidRequest,
            ),
            // wrong version, method type, params type, no method: the id is kept
            (
                r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#,
                n(3),
                InvalidRequest,
            ),
            (
                r#"{"jsonrpc":"2.0","id":"q","method":7}"#,
                Some(RequestId::String("q".into())),
                InvalidRequest,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#,
                n(1),
                InvalidRequest,
            ),
            (r#"{"jsonrpc":"2.0","id":1}"#, n(1), InvalidRequest),
            // a member given twice, whatever the values
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#,
                None,
                InvalidRequest,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"id":1,"method":"ping"}"#,
                None,
                InvalidRequest,
            ),
            (
                r#" {"jsonrpc":"2.0","id":1,"method":"x","params":{},"params":{}}"#,
                None,
                InvalidRequest,
            ),
        ];
        for (body, id, error) in cases {
            assert_eq!(err(body), Invalid::new(id.clone(), error.clone()), "{body}");
        }
        // other members are ignored
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","x":[1,{"y":2}]}"#).is_ok());
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(err(&deep).error, RpcError::Parse);
        let deep_obj = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"a":{}{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(err(&deep_obj).error, RpcError::Parse);
    }

    #[test]
    fn unsupported_version_data_names_supported_and_requested() {
        let err = RpcError::UnsupportedVersion {
            requested: "v999.0.0".into(),
        };
        let body = error_body(&err, Some(&RequestId::Number(7)), Era::Modern);
        assert_eq!(body["id"], 7);
        assert_eq!(body["error"]["data"]["requested"], "v999.0.0");
        assert!(
            body["error"]["data"]["supported"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "2026-07-28"))
        );
    }

    #[test]
    fn error_without_readable_id_omits_id() {
        let body = error_body(&RpcError::Parse, None, Era::Legacy);
        assert!(body.get("id").is_none());
        assert_eq!(body["jsonrpc"], "2.0");
    }
}
