//! The only parser of the MCP request headers (`MCP-Protocol-Version`, `Mcp-Method`,
//! `Mcp-Name`, `Mcp-Session-Id`), and the 2026-07-28 rule that they agree with the body.
//!
//! Rules (MCP 2026-07-28, Streamable HTTP, "Server Validation"):
//! - header names are case-insensitive (the `http` crate already lowercases them), values are
//!   case-sensitive, and optional whitespace around a value is trimmed before comparing;
//! - `Mcp-Name` may carry `=?base64?…?=` (exact lowercase markers): the Base64 inside is decoded
//!   before comparing; bad padding or characters outside the alphabet are a mismatch; a value
//!   without the full wrapper is taken literally;
//! - a value that is not visible ASCII is an invalid header, reported like a mismatch (-32020).

use axum::http::{HeaderMap, HeaderName};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::error::RpcError;
use crate::mcp::jsonrpc::Request;

pub const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub const METHOD: HeaderName = HeaderName::from_static("mcp-method");
pub const NAME: HeaderName = HeaderName::from_static("mcp-name");
pub const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// A header that is absent, present with a usable value (borrowed from the request), or present
/// but unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValueOf<'a> {
    Absent,
    Value(&'a str),
    Invalid,
}

/// The MCP headers of one request, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpHeaders<'a> {
    pub protocol_version: HeaderValueOf<'a>,
    pub method: HeaderValueOf<'a>,
    pub name: HeaderValueOf<'a>,
    pub session_id: HeaderValueOf<'a>,
}

fn read(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> HeaderValueOf<'_> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (None, _) => HeaderValueOf::Absent,
        (Some(_), Some(_)) => HeaderValueOf::Invalid,
        (Some(v), None) => match v.to_str() {
            Ok(s) => HeaderValueOf::Value(s.trim_matches([' ', '\t'])),
            Err(_) => HeaderValueOf::Invalid,
        },
    }
}

impl<'a> McpHeaders<'a> {
    pub fn parse(headers: &'a HeaderMap) -> Self {
        Self {
            protocol_version: read(headers, &PROTOCOL_VERSION),
            method: read(headers, &METHOD),
            name: read(headers, &NAME),
            session_id: read(headers, &SESSION_ID),
        }
    }
}

/// Decodes the `=?base64?…?=` form of `Mcp-Name`/`Mcp-Param-*`; other values are literal.
pub fn decode_header_text(value: &str) -> Result<String, RpcError> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        None => Ok(value.to_owned()),
        Some(encoded) => STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(RpcError::HeaderMismatch("header value is not valid Base64")),
    }
}

/// The body value `Mcp-Name` must equal, for the methods that require it.
fn name_in_body(request: &Request) -> Option<Option<&str>> {
    let key = request.method.named_by()?;
    Some(request.params.get(key).and_then(Value::as_str))
}

/// 2026-07-28: `Mcp-Method` (and `Mcp-Name` where required) are present and equal the body.
pub fn check_modern(headers: &McpHeaders<'_>, request: &Request) -> Result<(), RpcError> {
    match &headers.method {
        HeaderValueOf::Value(m) if *m == request.method.as_str() => {}
        HeaderValueOf::Value(_) => {
            return Err(RpcError::HeaderMismatch(
                "Mcp-Method does not match the request method",
            ));
        }
        HeaderValueOf::Absent => {
            return Err(RpcError::HeaderMismatch("Mcp-Method header is required"));
        }
        HeaderValueOf::Invalid => {
            return Err(RpcError::HeaderMismatch("Mcp-Method header is invalid"));
        }
    }
    if let Some(expected) = name_in_body(request) {
        let header = match &headers.name {
            HeaderValueOf::Value(v) => decode_header_text(v)?,
            HeaderValueOf::Absent => {
                return Err(RpcError::HeaderMismatch("Mcp-Name header is required"));
            }
            HeaderValueOf::Invalid => {
                return Err(RpcError::HeaderMismatch("Mcp-Name header is invalid"));
            }
        };
        if expected != Some(header.as_str()) {
            return Err(RpcError::HeaderMismatch(
                "Mcp-Name does not match the request",
            ));
        }
    }
    Ok(())
}

/// The JSON type of an argument mirrored into a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    String,
    Integer,
    Boolean,
}

/// An argument the client mirrors into an `Mcp-Param-<name>` header (`x-mcp-header`,
/// MCP 2026-07-28).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// The header name, lowercase: `mcp-param-<name>`.
    pub header: String,
    /// The argument's location: property names from the root of `arguments`.
    pub path: Vec<String>,
    pub kind: ParamKind,
}

/// The `x-mcp-header` annotations of an input schema, reachable through `properties` only.
///
/// # Errors
/// An annotation the specification does not allow (an empty or non-token name, a name used
/// twice, a type other than string, integer or boolean).
pub fn param_headers(schema: &Value) -> Result<Vec<ParamHeader>, String> {
    fn walk(
        node: &Value,
        path: &mut Vec<String>,
        out: &mut Vec<ParamHeader>,
    ) -> Result<(), String> {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            return Ok(());
        };
        for (key, sub) in props {
            path.push(key.clone());
            if let Some(name) = sub.get("x-mcp-header") {
                let name = name.as_str().unwrap_or_default();
                let token = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    return Err(format!("x-mcp-header of '{key}' is not an HTTP token"));
                }
                let kind = match sub.get("type").and_then(Value::as_str) {
                    Some("string") => ParamKind::String,
                    Some("integer") => ParamKind::Integer,
                    Some("boolean") => ParamKind::Boolean,
                    _ => {
                        return Err(format!(
                            "x-mcp-header of '{key}' needs a string, integer or boolean type"
                        ));
                    }
                };
                let header = format!("mcp-param-{}", name.to_ascii_lowercase());
                if out.iter().any(|p| p.header == header) {
                    return Err(format!("x-mcp-header '{name}' is used twice"));
                }
                out.push(ParamHeader {
                    header,
                    path: path.clone(),
                    kind,
                });
            }
            walk(sub, path, out)?;
            path.pop();
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// 2026-07-28 `x-mcp-header`: every mirrored argument present in the body has its
/// `Mcp-Param-*` header, with an equal value (Base64 decoded; integers compared as numbers); a
/// header without a value in the body is a mismatch too.
pub fn check_param_headers(
    headers: &HeaderMap,
    params: &[ParamHeader],
    arguments: Option<&Value>,
) -> Result<(), RpcError> {
    let mismatch = || RpcError::HeaderMismatch("an Mcp-Param header does not match the arguments");
    for param in params {
        let value = arguments
            .and_then(|args| param.path.iter().try_fold(args, |v, key| v.get(key)))
            .filter(|v| !v.is_null());
        let header = match read(headers, param.header.as_str()) {
            HeaderValueOf::Absent => None,
            HeaderValueOf::Value(v) => Some(decode_header_text(v)?),
            HeaderValueOf::Invalid => return Err(mismatch()),
        };
        let equal = match (value, header.as_deref()) {
            (None, None) => true,
            (Some(v), Some(h)) => match param.kind {
                ParamKind::String => v.as_str() == Some(h),
                ParamKind::Integer => h.parse::<i64>().ok().is_some_and(|n| v.as_i64() == Some(n)),
                ParamKind::Boolean => v
                    .as_bool()
                    .is_some_and(|b| h == if b { "true" } else { "false" }),
            },
            _ => false,
        };
        if !equal {
            return Err(mismatch());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::RequestId;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn request(method: &str, params: Value) -> Request {
        Request {
            id: RequestId::Number(1),
            method: crate::mcp::method::Method::parse(method),
            params: params.as_object().cloned().unwrap_or_default(),
        }
    }

    /// Parsed headers that borrow from a map kept for the rest of the test run.
    fn headers(pairs: &[(&'static str, &str)]) -> McpHeaders<'static> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        McpHeaders::parse(Box::leak(Box::new(h)))
    }

    #[test]
    fn values_are_trimmed_and_case_sensitive() {
        let r = request("tools/list", json!({}));
        assert_eq!(
            check_modern(&headers(&[("mcp-method", " tools/list\t")]), &r),
            Ok(())
        );
        assert!(check_modern(&headers(&[("mcp-method", "TOOLS/LIST")]), &r).is_err());
        assert!(check_modern(&headers(&[]), &r).is_err());
        assert!(check_modern(&headers(&[("mcp-method", "tools/call")]), &r).is_err());
    }

    #[test]
    fn name_is_required_and_compared_for_calls_reads_and_prompts() {
        let call = request("tools/call", json!({"name": "read_file"}));
        let ok = headers(&[("mcp-method", "tools/call"), ("mcp-name", "read_file")]);
        assert_eq!(check_modern(&ok, &call), Ok(()));
        let missing = headers(&[("mcp-method", "tools/call")]);
        assert!(check_modern(&missing, &call).is_err());
        let wrong = headers(&[("mcp-method", "tools/call"), ("mcp-name", "stat_path")]);
        assert!(check_modern(&wrong, &call).is_err());
        let read = request("resources/read", json!({"uri": "file:///a/b"}));
        let ok = headers(&[
            ("mcp-method", "resources/read"),
            ("mcp-name", "file:///a/b"),
        ]);
        assert_eq!(check_modern(&ok, &read), Ok(()));
    }

    #[test]
    fn base64_wrapped_names_are_decoded_and_bad_base64_rejected() {
        assert_eq!(
            decode_header_text("=?base64?SGVsbG8=?="),
            Ok("Hello".into())
        );
        assert_eq!(decode_header_text("SGVsbG8="), Ok("SGVsbG8=".into()));
        assert_eq!(
            decode_header_text("=?base64?SGVsbG8="),
            Ok("=?base64?SGVsbG8=".into())
        );
        assert!(decode_header_text("=?base64?SGVsbG8?=").is_err());
        assert!(decode_header_text("=?base64?SGV*bG8=?=").is_err());
        let call = request("tools/call", json!({"name": "Hello"}));
        let h = headers(&[
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?SGVsbG8=?="),
        ]);
        assert_eq!(check_modern(&h, &call), Ok(()));
    }

    #[test]
    fn mirrored_arguments_must_match_their_headers() {
        let params = [
            ParamHeader {
                header: "mcp-param-region".into(),
                path: vec!["region".into()],
                kind: ParamKind::String,
            },
            ParamHeader {
                header: "mcp-param-count".into(),
                path: vec!["count".into()],
                kind: ParamKind::Integer,
            },
        ];
        let check = |pairs: &[(&'static str, &str)], args: Value| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_str(v).expect("header"));
            }
            check_param_headers(&h, &params, Some(&args))
        };
        assert!(
            check(
                &[("mcp-param-region", "eu"), ("mcp-param-count", "007")],
                json!({"region": "eu", "count": 7})
            )
            .is_ok()
        );
        assert!(
            check(
                &[("mcp-param-region", "=?base64?SGVsbG8=?=")],
                json!({"region": "Hello"})
            )
            .is_ok()
        );
        assert!(
            check(&[], json!({})).is_ok(),
            "absent in the body: no header expected"
        );
        assert!(
            check(&[], json!({"region": "eu"})).is_err(),
            "missing header"
        );
        assert!(check(&[("mcp-param-region", "us")], json!({"region": "eu"})).is_err());
        assert!(
            check(
                &[("mcp-param-region", "=?base64?SGVsbG8?=")],
                json!({"region": "Hello"})
            )
            .is_err(),
            "bad padding"
        );
        assert!(
            check(
                &[("mcp-param-region", "=?base64?SGVs!!!bG8=?=")],
                json!({"region": "Hello"})
            )
            .is_err()
        );
        assert!(check(&[("mcp-param-count", "seven")], json!({"count": 7})).is_err());
    }

    #[test]
    fn duplicate_headers_are_invalid() {
        let h = headers(&[("mcp-method", "tools/list"), ("mcp-method", "tools/list")]);
        assert_eq!(h.method, HeaderValueOf::Invalid);
    }
    #[test]
    fn x_mcp_header_annotations_are_found_and_checked() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry-Run"}}},
            "items": {"type": "array", "items": {"type": "string", "x-mcp-header": "Ignored"}}
        }});
        let found = param_headers(&schema).expect("valid");
        assert_eq!(found.len(), 2);
        assert!(found.contains(&ParamHeader {
            header: "mcp-param-region".into(),
            path: vec!["region".into()],
            kind: ParamKind::String
        }));
        assert!(found.contains(&ParamHeader {
            header: "mcp-param-dry-run".into(),
            path: vec!["opts".into(), "dry".into()],
            kind: ParamKind::Boolean
        }));
        for bad in [
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "has space"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "X"}, "b": {"type": "string", "x-mcp-header": "x"}}}),
        ] {
            assert!(param_headers(&bad).is_err(), "{bad}");
        }
    }
}
