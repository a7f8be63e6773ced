//! The JSON-RPC 2.0 envelope: one parse of the body into a typed [`Message`], and the two
//! response shapes.
//!
//! Decisions:
//! - The body is parsed once, into a `serde_json::Value`; serde_json's recursion limit (128)
//!   turns an absurdly nested body into a parse error instead of a stack overflow.
//! - A JSON array (a batch) is refused: batching left MCP in 2025-06-18 and this server does not
//!   process it for any revision (one request per POST keeps rate limits and audit exact).
//! - A request `id` must be a string or an integer; `null`, floats and objects are invalid.
//! - `params`, when present, must be an object (MCP never uses positional params).
//! - An error whose `id` could not be read omits `id`, as the MCP schema allows.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::RpcError;

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
    pub method: String,
    pub params: Map<String, Value>,
}

/// A notification: no id, no response.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
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

/// Parses one HTTP body into one message.
pub fn parse(body: &[u8]) -> Result<Message, Invalid> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| Invalid::new(None, RpcError::Parse))?;
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(Invalid::new(None, RpcError::Batch)),
        _ => return Err(Invalid::new(None, RpcError::InvalidRequest)),
    };

    let raw_id = object.remove("id");
    let id = match &raw_id {
        None => None,
        Some(v) => match RequestId::from_value(v) {
            Some(id) => Some(id),
            None => return Err(Invalid::new(None, RpcError::InvalidRequest)),
        },
    };
    let invalid = |id: &Option<RequestId>| Invalid::new(id.clone(), RpcError::InvalidRequest);

    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(&id));
    }

    let method = match object.remove("method") {
        Some(Value::String(m)) => Some(m),
        Some(_) => return Err(invalid(&id)),
        None => None,
    };
    let params = match object.remove("params") {
        None => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid(&id)),
    };

    match (method, id) {
        (Some(method), Some(id)) => Ok(Message::Request(Request { id, method, params })),
        (Some(method), None) => Ok(Message::Notification(Notification { method, params })),
        (None, Some(id)) if object.contains_key("result") || object.contains_key("error") => {
            let outcome = match object.remove("result") {
                Some(result) => Ok(result),
                None => Err(object.remove("error").unwrap_or(Value::Null)),
            };
            Ok(Message::Response { id, outcome })
        }
        (None, id) => Err(invalid(&id)),
    }
}

/// `{"jsonrpc":"2.0","id":…,"result":…}`
pub fn success_response(id: &RequestId, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// `{"jsonrpc":"2.0","id":…,"error":…}`, without `id` when it is unknown.
pub fn error_response(id: Option<&RequestId>, error: Value) -> Value {
    match id {
        Some(id) => json!({ "jsonrpc": "2.0", "id": id, "error": error }),
        None => json!({ "jsonrpc": "2.0", "error": error }),
    }
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
        assert_eq!(err("{").error, RpcError::Parse);
        assert_eq!(err("").error, RpcError::Parse);
        assert_eq!(err("[]").error, RpcError::Batch);
        assert_eq!(
            err(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).error,
            RpcError::Batch
        );
        assert_eq!(err("42").error, RpcError::InvalidRequest);
        // null, float and object ids
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).error,
            RpcError::InvalidRequest
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#).error,
            RpcError::InvalidRequest
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).error,
            RpcError::InvalidRequest
        );
        // wrong version, method type, params type: the id is kept
        let e = err(r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#);
        assert_eq!(
            (e.id, e.error),
            (Some(RequestId::Number(3)), RpcError::InvalidRequest)
        );
        let e = err(r#"{"jsonrpc":"2.0","id":"q","method":7}"#);
        assert_eq!(e.id, Some(RequestId::String("q".into())));
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#).error,
            RpcError::InvalidRequest
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":1}"#).error,
            RpcError::InvalidRequest
        );
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
}
