//! The Model Context Protocol: the JSON-RPC envelope, the protocol eras, the HTTP transport,
//! legacy sessions, method dispatch, streams, prompts and resources.

pub mod context;
pub mod dispatch;
pub mod events;
pub mod headers;
pub mod input_required;
pub mod jsonrpc;
pub mod method;
pub mod prompts;
pub mod request_state;
pub mod resources;
pub mod session;
pub mod tasks;
pub mod transport;
pub mod version;
