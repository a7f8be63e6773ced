//! The Model Context Protocol: the JSON-RPC envelope, the protocol eras, the HTTP transport,
//! legacy sessions, method dispatch and the file resources.

pub mod dispatch;
pub mod headers;
pub mod jsonrpc;
pub mod resources;
pub mod session;
pub mod transport;
pub mod version;
