//! `secure-mcp-server`: a Model Context Protocol server over Streamable HTTP, built to be put on a
//! network.
//!
//! The map of a request is [`app::router`]: it lists every layer a request passes, outermost
//! first. From there:
//! - [`security`] holds the defences (API keys, client address);
//! - [`mcp`] speaks the protocol (JSON-RPC envelope, the two protocol eras, sessions, dispatch);
//! - [`tools`] holds the tool registry and the built-in tools (sandboxed files, system info);
//! - [`error`] maps every failure to one HTTP status and one JSON-RPC code.

pub mod app;
pub mod check;
pub mod config;
pub mod error;
pub mod files;
pub mod keys;
pub mod mcp;
pub mod observability;
pub mod panic;
pub mod policy;
pub mod security;
pub mod server;
pub mod state;
pub mod tls;
pub mod tools;
