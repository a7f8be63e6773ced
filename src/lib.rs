//! `secure-mcp-server`: a Model Context Protocol server over Streamable HTTP, built to be put on a
//! network.
//!
//! The map of a request is [`app::router`]: it lists every layer a request passes, outermost
//! first (ARCHITECTURE.md follows it through the modules). From there:
//! - [`config`] turns the command line into a validated configuration and opens, once, what it
//!   names; [`state`] is what every layer shares; [`server`] accepts and serves connections;
//! - [`security`] holds the defences (API keys, the caller's principal, client address, rate
//!   limits, Origin/Host, connection caps, revocation);
//! - [`mcp`] speaks the protocol (JSON-RPC envelope, methods, the two eras, the transport,
//!   sessions, dispatch, the per-request context);
//! - [`tools`] holds the tool registry and the system tool; [`files`] the sandbox and
//!   everything that reads files;
//! - [`observability`] writes the audit trail, security events and metrics;
//! - [`fleet`] shares budgets and sessions between instances through Redis;
//! - [`error`] maps every failure to one HTTP status and one JSON-RPC code.

pub mod app;
pub mod check;
pub mod config;
pub mod error;
pub mod files;
pub mod fleet;
pub mod gateway;
pub mod keys;
pub mod mcp;
pub mod observability;
pub mod panic;
pub mod policy;
pub mod policy_wait;
pub mod security;
pub mod server;
pub mod state;
pub mod tls;
pub mod tools;
pub mod upkeep;

/// The allocator of every program built on this library (the server, its examples, its
/// tests): jemalloc, with the feature `jemalloc` (on by default; the fuzz targets turn it off
/// for their sanitizers). Measured against glibc's malloc (BENCHMARKS.md): a `tools/call`
/// allocates a few futures over a kilobyte, which glibc serves from its slow path
/// (`malloc_consolidate`), jemalloc from size classes. Its settings, compiled in from
/// `.cargo/config.toml`, return freed pages to the system at once, so the memory targets
/// (idle, under load, the rate limiter's table at its peak and after a sweep) hold.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
