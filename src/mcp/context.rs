//! The context of one MCP request that the layers above and the handlers below share, so
//! that tools, prompts, resources and the audit depend on it and not on each other: what the
//! message asked for ([`McpCall`], for the audit), and what a handler noted on the way
//! ([`CallNote`]: the sandbox path it touched, whether that was an escape attempt, whether a
//! tool failed).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::mcp::jsonrpc::Message;
use crate::mcp::version::Era;
use crate::observability::audit::event::cut;

/// What an MCP message asked for, attached to the response for the audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCall {
    /// A method this server knows is kept without a copy.
    pub method: Cow<'static, str>,
    /// The tool or prompt name, or the resource URI.
    pub name: Option<String>,
    pub era: Option<Era>,
}

impl McpCall {
    pub fn of(message: &Message) -> Option<Self> {
        let (method, params) = match message {
            Message::Request(r) => (&r.method, &r.params),
            Message::Notification(n) => (&n.method, &n.params),
            Message::Response { .. } => {
                return Some(Self {
                    method: Cow::Borrowed("response"),
                    name: None,
                    era: None,
                });
            }
        };
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .map(cut);
        Some(Self {
            method: match method.known_name() {
                Some(known) => Cow::Borrowed(known),
                None => Cow::Owned(cut(method.as_str())),
            },
            name,
            era: None,
        })
    }
}

/// What a tool noted for the audit: the path it touched, whether that was an escape attempt,
/// and whether its result was an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallNote {
    pub path: Option<String>,
    pub escape: bool,
    pub tool_error: Option<bool>,
}

/// Shared between the transport (which attaches it to the response) and the tool.
pub type NoteCell = Arc<Mutex<CallNote>>;

/// Notes the sandbox path a call touched (or tried to), cut to size, for the audit log.
pub fn note_path(note: &NoteCell, path: &str, escape_attempt: bool) {
    let mut note = note.lock().unwrap_or_else(|e| e.into_inner());
    note.path = Some(cut(path));
    note.escape |= escape_attempt;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc;
    use crate::observability::audit::MAX_FIELD;

    #[test]
    fn calls_record_method_and_name_cut_to_size() {
        let long = "x".repeat(1000);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{long}"}}}}"#
        );
        let m = jsonrpc::parse(body.as_bytes()).expect("parse");
        let call = McpCall::of(&m).expect("call");
        assert_eq!(call.method, "tools/call");
        assert_eq!(call.name.map(|n| n.len()), Some(MAX_FIELD));
    }
}
