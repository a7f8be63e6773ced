//! One audit event per request, security events, and the audit file.
//!
//! Every request produces one [`AuditEvent`]: time, request id, client address, key id (never
//! the key), HTTP method and path, MCP method, tool or resource name, protocol era, status,
//! JSON-RPC error code, latency, bytes in and out, outcome (`ok`, `unauthorized`,
//! `forbidden_origin`, `rate_limited`, `invalid`, `error`) and, for file tools, the path in the
//! sandbox's namespace. The request id is also returned as `X-Request-Id`.
//!
//! Where it goes: with `--audit-log PATH`, to that file only, as newline-delimited JSON, opened
//! append-only (mode 0600); otherwise to the diagnostic log as a `tracing` event with target
//! `audit` (human lines, or JSON with `--log-format json`). Writing never blocks a request:
//! events go through a bounded channel ([`AUDIT_QUEUE`](sink::AUDIT_QUEUE)) to a writer, and
//! when the channel is full the event is counted as dropped (`mcp_audit_dropped_events`, `/health/details`), never lost
//! silently. On shutdown the writer drains the channel and flushes. The writer is a thread of
//! its own (not a task on the blocking pool the file tools share, so a burst of file reads
//! cannot hold the audit back), and it reopens the file by its path after SIGHUP, so
//! logrotate's rename-then-signal works.
//!
//! A client over its request budget is not audited request by request: see
//! [`crate::observability::summary`].
//!
//! Security events (see [`crate::observability::security`]; target `security`, counted in `mcp_security_events_total`): `auth_failed`,
//! `rate_limited`, `forbidden_origin`, `oversized_body`, `sandbox_escape`, each with the client
//! address; and, outside a request, `connection_limit` and `connection_limit_per_ip` (a
//! connection refused at accept) and `keys_reload_failed`. Log lines are throttled per kind.
//!
//! Client-supplied strings are cut to [`MAX_FIELD`] characters. JSON encoding escapes newlines
//! and control characters, and the text log uses `Debug` formatting, which escapes them too, so
//! a client cannot forge a log line.
//!
//! The parts: [`event`] (the event and its line), [`sink`] (the file and its writer), [`layer`]
//! (the request policy).

pub mod event;
pub mod layer;
pub mod sink;

pub use event::{AuditEvent, MAX_FIELD, RequestIdent, rfc3339};
pub use layer::Audit;
pub use sink::AuditSink;
