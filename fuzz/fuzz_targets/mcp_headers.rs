//! `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Session-Id`, `Mcp-Param-*`: parsed,
//! decoded and checked against a body, never a panic; an `Mcp-Name` the check accepts decodes
//! to the name in the body.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::mcp::headers::{self, HeaderValueOf, McpHeaders, ParamHeader, ParamKind};
use secure_mcp_server::mcp::jsonrpc::{Message, parse};
use secure_mcp_server::mcp::version::ProtocolVersion;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // headers, a blank line, then a body
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    let map = common::headers(&data[..split]);
    let body = data.get(split + 2..).unwrap_or_default();
    let parsed = McpHeaders::parse(&map);
    for value in [
        parsed.protocol_version,
        parsed.method,
        parsed.name,
        parsed.session_id,
    ] {
        if let HeaderValueOf::Value(v) = value {
            let _ = headers::decode_header_text(v);
            let _ = ProtocolVersion::parse(v);
        }
    }
    if let Ok(Message::Request(request)) = parse(body) {
        if headers::check_modern(&parsed, &request).is_ok() {
            assert!(matches!(parsed.method, HeaderValueOf::Value(m) if m == request.method));
        }
        // `Mcp-Param-*`: three mirrored arguments, one of each kind, one nested
        let params = [
            ParamHeader {
                header: "mcp-param-path".into(),
                path: vec!["path".into()],
                kind: ParamKind::String,
            },
            ParamHeader {
                header: "mcp-param-limit".into(),
                path: vec!["limit".into()],
                kind: ParamKind::Integer,
            },
            ParamHeader {
                header: "mcp-param-deep".into(),
                path: vec!["opts".into(), "deep".into()],
                kind: ParamKind::Boolean,
            },
        ];
        let arguments = request.params.get("arguments");
        if headers::check_param_headers(&map, &params, arguments).is_ok()
            && let Some(Value::String(path)) = arguments.and_then(|a| a.get("path"))
        {
            let header = map
                .get("mcp-param-path")
                .and_then(|v| v.to_str().ok())
                .expect("present");
            assert_eq!(
                headers::decode_header_text(header.trim()).as_deref(),
                Ok(path.as_str())
            );
        }
    }
});
