//! The JSON-RPC envelope and `_meta`: never a panic, and a message the parser accepts
//! re-serialises to one that parses back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::mcp::jsonrpc::{self, Message};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = jsonrpc::parse(data) else {
        return;
    };
    let again = match &message {
        Message::Request(r) => {
            // what the transport reads of `_meta`
            if let Some(meta) = r.params.get("_meta").and_then(Value::as_object) {
                let _ = meta
                    .get("io.modelcontextprotocol/protocolVersion")
                    .and_then(Value::as_str);
                let _ = meta
                    .get("io.modelcontextprotocol/clientCapabilities")
                    .and_then(Value::as_object);
                let _ = secure_mcp_server::mcp::session::known_capabilities(
                    meta.get("io.modelcontextprotocol/clientCapabilities")
                        .and_then(Value::as_object),
                );
            }
            json!({"jsonrpc": "2.0", "id": r.id, "method": r.method, "params": r.params})
        }
        Message::Notification(n) => {
            json!({"jsonrpc": "2.0", "method": n.method, "params": n.params})
        }
        Message::Response { id, outcome } => match outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
        },
    };
    let bytes = serde_json::to_vec(&again).expect("serialises");
    let reparsed =
        jsonrpc::parse(&bytes).expect("an accepted message re-serialises to a valid one");
    assert_eq!(reparsed, message, "re-serialised message differs");
});
