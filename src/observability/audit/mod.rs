//! One audit event per request, security events, and the audit file.
//!
//! Every request produces one [`AuditEvent`]: time, request id, client address, key id (never
//! the key), HTTP method and path, MCP method, tool or resource name, protocol era, status,
//! JSON-RPC error code, latency, bytes in and out, outcome (`ok`, `unauthorized`,
//! `forbidden_origin`, `rate_limited`, `invalid`, `error`) and, for file tools, the path in the
//! sandbox's namespace. The request id is also returned as `X-Request-Id`.
//!
//! Where it goes: with `--audit-log PATH`, to that file only, as newline-delimited JSON, opened
//! append-only (mode 0600); otherwise to the diagnostic log on stderr, target `audit` (text
//! lines, or JSON lines with `--log-format json`; off when `MCP_LOG` filters the target out).
//! Both go through one batching writer ([`writer`]): a request appends its line to a queue
//! bounded in bytes ([`QUEUE_BYTES`](writer::QUEUE_BYTES)) and a thread of its own writes the
//! queue out every [`FLUSH_EVERY`](writer::FLUSH_EVERY); when the queue is full the event is
//! counted as dropped (`mcp_audit_dropped_events`, `/health/details`), never lost silently,
//! and the request never waits. On shutdown the writer writes what is queued and flushes. It
//! reopens the file by its path after SIGHUP, so logrotate's rename-then-signal works.
//!
//! A client over its request budget is not audited request by request: see
//! [`crate::observability::summary`].
//!
//! Security events (see [`crate::observability::security`]; target `security`, counted in `mcp_security_events_total`): `auth_failed`,
//! `rate_limited`, `forbidden_origin`, `oversized_body`, `sandbox_escape`, each with the client
//! address; and, outside a request, `connection_limit` and `connection_limit_per_ip` (a
//! connection refused at accept) and `keys_reload_failed`. Log lines are throttled per kind.
//!
//! Client-supplied strings are cut to [`MAX_FIELD`] characters and written as JSON strings in
//! every line shape (the text log's too), which escapes newlines and control characters, so a
//! client cannot forge a log line.
//!
//! The parts: [`event`] (the event), [`line`] (its line in the file's and the log's shapes),
//! [`writer`] (the batching writer), [`sink`] (the destination), [`layer`] (the request
//! policy).

pub mod event;
pub mod layer;
pub mod line;
pub mod sink;
pub mod writer;

pub use event::{AuditEvent, MAX_FIELD, RequestIdent, rfc3339};
pub use layer::Audit;
pub use sink::AuditSink;
