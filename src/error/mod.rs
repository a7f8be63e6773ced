//! Every failure a client can see, and its one mapping to an HTTP status and a JSON-RPC code.
//!
//! Three domains (see the house style):
//! - [`Rejection`]: an HTTP layer refused the request before its JSON-RPC message was read, so
//!   the error body has no `id`;
//! - [`RpcError`]: the protocol refused the message; the body echoes the request `id` when it
//!   could be read, and the status depends on the protocol era (MCP 2026-07-28 gives most
//!   protocol errors their own HTTP status, the earlier revisions answer 200);
//! - tool failures are not errors at this level: they are results with `isError: true`
//!   (see [`ToolError`]).
//!
//! Messages are fixed, generic strings. The detail of a failure (an `io::Error`, a resolved path)
//! goes to the server's log, never to the client. Codes stay out of `-32000..-32019` (which the
//! 2026-07-28 revision asks new implementations not to use) and use only the codes the
//! specification defines in `-32020..-32099`.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::mcp::version::{Era, ProtocolVersion};

/// JSON-RPC and MCP error codes.
pub mod code {
    pub const PARSE_ERROR: i32 = -32700;
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
    /// 2025-era "resource not found" (the 2026-07-28 revision uses `INVALID_PARAMS`).
    pub const RESOURCE_NOT_FOUND_LEGACY: i32 = -32002;
    pub const HEADER_MISMATCH: i32 = -32020;
    pub const MISSING_CLIENT_CAPABILITY: i32 = -32021;
    pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
}

/// The JSON-RPC error code a response carried, for the audit log (a response extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub i32);

/// Marks a 429 for a client over its request budget (a response extension): the audit
/// summarises these per client and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit;

/// A refusal by an HTTP layer, before the JSON-RPC message was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("Authentication required")]
    MissingCredentials,
    #[error("Invalid credentials")]
    InvalidCredentials,
    #[error("Forbidden: host not allowed")]
    ForbiddenHost,
    #[error("Forbidden: origin not allowed")]
    ForbiddenOrigin,
    /// A valid token without a scope every request needs (the challenge names them).
    #[error("Forbidden: insufficient scope")]
    InsufficientScope,
    #[error("Too many requests")]
    RateLimited {
        /// Whole seconds until a request can succeed (rounded up, at least 1).
        retry_after_secs: u64,
        /// The policy: requests per window, and the window in seconds.
        limit: u32,
        window_secs: u64,
    },
    #[error("Not found")]
    NotFound,
    #[error("Method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("Not acceptable: accept application/json or text/event-stream")]
    NotAcceptable,
    #[error("Request body too large")]
    PayloadTooLarge,
    #[error("A stream is already open for this session")]
    Conflict,
    /// The key has as many streams open as `--max-streams-per-key` allows.
    #[error("Too many open streams for this key")]
    StreamLimit,
    #[error("Internal error")]
    Internal,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::ForbiddenHost | Self::ForbiddenOrigin | Self::InsufficientScope => {
                StatusCode::FORBIDDEN
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict => StatusCode::CONFLICT,
            Self::StreamLimit => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> i32 {
        match self {
            Self::Internal => code::INTERNAL_ERROR,
            _ => code::INVALID_REQUEST,
        }
    }
}

impl Rejection {
    /// A `RateLimited` never tells a client to retry in zero seconds.
    pub fn at_least_one_second(self) -> Self {
        match self {
            Self::RateLimited {
                retry_after_secs,
                limit,
                window_secs,
            } => Self::RateLimited {
                retry_after_secs: retry_after_secs.max(1),
                limit,
                window_secs,
            },
            other => other,
        }
    }
}

impl Rejection {
    /// The JSON body, which depends only on the kind: a constant, so a flood of refusals costs
    /// no formatting (a unit test checks each against its variant's code and message).
    fn body(&self) -> &'static str {
        match self {
            Self::MissingCredentials => body::MISSING_CREDENTIALS,
            Self::InvalidCredentials => body::INVALID_CREDENTIALS,
            Self::ForbiddenHost => body::FORBIDDEN_HOST,
            Self::ForbiddenOrigin => body::FORBIDDEN_ORIGIN,
            Self::InsufficientScope => body::INSUFFICIENT_SCOPE,
            Self::RateLimited { .. } => body::RATE_LIMITED,
            Self::NotFound => body::NOT_FOUND,
            Self::MethodNotAllowed { .. } => body::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => body::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAcceptable => body::NOT_ACCEPTABLE,
            Self::PayloadTooLarge => body::PAYLOAD_TOO_LARGE,
            Self::Conflict => body::CONFLICT,
            Self::StreamLimit => body::STREAM_LIMIT,
            Self::Internal => body::INTERNAL,
        }
    }
}

/// The body of each [`Rejection`]: a JSON-RPC error object without an `id`.
mod body {
    macro_rules! rejection_body {
        ($name:ident, $code:literal, $message:literal) => {
            pub const $name: &str = concat!(
                r#"{"jsonrpc":"2.0","error":{"code":"#,
                $code,
                r#","message":""#,
                $message,
                r#""}}"#
            );
        };
    }
    rejection_body!(MISSING_CREDENTIALS, -32600, "Authentication required");
    rejection_body!(INVALID_CREDENTIALS, -32600, "Invalid credentials");
    rejection_body!(FORBIDDEN_HOST, -32600, "Forbidden: host not allowed");
    rejection_body!(FORBIDDEN_ORIGIN, -32600, "Forbidden: origin not allowed");
    rejection_body!(INSUFFICIENT_SCOPE, -32600, "Forbidden: insufficient scope");
    rejection_body!(RATE_LIMITED, -32600, "Too many requests");
    rejection_body!(NOT_FOUND, -32600, "Not found");
    rejection_body!(METHOD_NOT_ALLOWED, -32600, "Method not allowed");
    rejection_body!(
        UNSUPPORTED_MEDIA_TYPE,
        -32600,
        "Content-Type must be application/json"
    );
    rejection_body!(
        NOT_ACCEPTABLE,
        -32600,
        "Not acceptable: accept application/json or text/event-stream"
    );
    rejection_body!(PAYLOAD_TOO_LARGE, -32600, "Request body too large");
    rejection_body!(
        CONFLICT,
        -32600,
        "A stream is already open for this session"
    );
    rejection_body!(STREAM_LIMIT, -32600, "Too many open streams for this key");
    rejection_body!(INTERNAL, -32603, "Internal error");
}

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// `"default";{a}={x};{b}={y}` (draft-ietf-httpapi-ratelimit-headers) without `fmt`.
fn rate_limit_value(a: &[u8], x: u64, b: &[u8], y: u64) -> Option<HeaderValue> {
    let mut out = [0u8; 64];
    let mut len = 0;
    let (mut xs, mut ys) = (itoa::Buffer::new(), itoa::Buffer::new());
    for part in [
        b"\"default\";".as_slice(),
        a,
        xs.format(x).as_bytes(),
        b,
        ys.format(y).as_bytes(),
    ] {
        out.get_mut(len..len + part.len())?.copy_from_slice(part);
        len += part.len();
    }
    HeaderValue::from_bytes(&out[..len]).ok()
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = Response::new(axum::body::Body::from(Bytes::from_static(
            self.body().as_bytes(),
        )));
        *response.status_mut() = self.status();
        response.extensions_mut().insert(ErrorCode(self.code()));
        let headers = response.headers_mut();
        headers.reserve(6);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self {
            // RFC 6750 section 3: no `error` attribute when no credentials were sent.
            Self::MissingCredentials => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"mcp\""),
                );
            }
            Self::InvalidCredentials => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"mcp\", error=\"invalid_token\""),
                );
            }
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::RateLimited {
                retry_after_secs,
                limit,
                window_secs,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                response.extensions_mut().insert(OverLimit);
                let headers = response.headers_mut();
                // draft-ietf-httpapi-ratelimit-headers: the policy, and what is left of it.
                let policy = rate_limit_value(b"q=", u64::from(limit), b";w=", window_secs);
                if let Some(v) = policy {
                    headers.insert(RATELIMIT_POLICY.clone(), v);
                }
                if let Some(v) = rate_limit_value(b"r=", 0, b";t=", retry_after_secs) {
                    headers.insert(RATELIMIT.clone(), v);
                }
            }
            _ => {}
        }
        response
    }
}

/// A refusal by the protocol layer: the message was read (its `id` may be known).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    #[error("Parse error")]
    Parse,
    #[error("Invalid request")]
    InvalidRequest,
    #[error("Batch requests are not supported")]
    Batch,
    #[error("A response was not expected")]
    UnexpectedResponse,
    #[error("Method not found")]
    MethodNotFound,
    /// Bad parameters; the detail is a fixed text chosen by the server, never client data.
    #[error("Invalid params: {0}")]
    InvalidParams(Cow<'static, str>),
    /// 2026-07-28: `_meta` lacks a required key.
    #[error("Invalid params: _meta must carry {0}")]
    MissingMeta(&'static str),
    /// 2026-07-28: a standard header is missing or disagrees with the body.
    #[error("Header mismatch: {0}")]
    HeaderMismatch(&'static str),
    #[error("Missing required client capability")]
    MissingCapability(Value),
    #[error("Unsupported protocol version")]
    UnsupportedVersion { requested: String },
    /// A legacy request whose `MCP-Protocol-Version` header names no revision we speak.
    #[error("Unsupported protocol version")]
    UnsupportedVersionHeader,
    #[error("Resource not found")]
    ResourceNotFound { uri: String },
    #[error("Session id required")]
    SessionRequired,
    #[error("Session not found")]
    SessionNotFound,
    #[error("Session limit reached")]
    SessionLimit,
    /// The key holds as many live sessions as `--max-sessions-per-key` allows.
    #[error("Too many sessions for this key")]
    SessionQuota,
    /// No file-job slot came free in time (see [`crate::files::jobs`]).
    #[error("Server busy: retry in a moment")]
    Busy,
    #[error("Internal error")]
    Internal,
    /// The gateway's upstream server failed (exited, timed out, broke the protocol); the
    /// detail is a fixed text, never the upstream's own words.
    #[error("Upstream server error: {0}")]
    Upstream(&'static str),
}

impl RpcError {
    /// The JSON-RPC code, which for "resource not found" depends on the era.
    pub fn code(&self, era: Era) -> i32 {
        match self {
            Self::Parse => code::PARSE_ERROR,
            Self::InvalidRequest
            | Self::Batch
            | Self::UnexpectedResponse
            | Self::UnsupportedVersionHeader
            | Self::SessionRequired
            | Self::SessionNotFound
            | Self::SessionQuota => code::INVALID_REQUEST,
            Self::MethodNotFound => code::METHOD_NOT_FOUND,
            Self::InvalidParams(_) | Self::MissingMeta(_) => code::INVALID_PARAMS,
            Self::HeaderMismatch(_) => code::HEADER_MISMATCH,
            Self::MissingCapability(_) => code::MISSING_CLIENT_CAPABILITY,
            Self::UnsupportedVersion { .. } => code::UNSUPPORTED_PROTOCOL_VERSION,
            Self::ResourceNotFound { .. } => match era {
                Era::Modern => code::INVALID_PARAMS,
                Era::Legacy => code::RESOURCE_NOT_FOUND_LEGACY,
            },
            Self::SessionLimit | Self::Busy | Self::Internal | Self::Upstream(_) => {
                code::INTERNAL_ERROR
            }
        }
    }

    /// The HTTP status the error travels with.
    pub fn status(&self, era: Era) -> StatusCode {
        match self {
            Self::Parse
            | Self::InvalidRequest
            | Self::Batch
            | Self::UnexpectedResponse
            | Self::MissingMeta(_)
            | Self::HeaderMismatch(_)
            | Self::MissingCapability(_)
            | Self::UnsupportedVersion { .. }
            | Self::UnsupportedVersionHeader
            | Self::SessionRequired => StatusCode::BAD_REQUEST,
            Self::MethodNotFound => match era {
                Era::Modern => StatusCode::NOT_FOUND,
                Era::Legacy => StatusCode::OK,
            },
            Self::InvalidParams(_) | Self::ResourceNotFound { .. } => StatusCode::OK,
            Self::SessionNotFound => StatusCode::NOT_FOUND,
            Self::SessionLimit => StatusCode::SERVICE_UNAVAILABLE,
            Self::SessionQuota => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The structured `error.data`, where the specification defines one.
    pub fn data(&self) -> Option<Value> {
        match self {
            Self::MissingCapability(required) => Some(json!({ "requiredCapabilities": required })),
            Self::UnsupportedVersion { requested } => Some(json!({
                "supported": ProtocolVersion::supported_strings(),
                "requested": requested,
            })),
            Self::UnsupportedVersionHeader => {
                Some(json!({ "supported": ProtocolVersion::supported_strings() }))
            }
            Self::ResourceNotFound { uri } => Some(json!({ "uri": uri })),
            _ => None,
        }
    }
}

/// A tool or prompt that ran and failed, or got arguments its schema refuses: the message is
/// shown to the client in a result with `isError: true`. Fixed texts only (a sandbox refusal,
/// a busy queue and the like convert into one where they are defined).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    #[error("Invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("{0}")]
    Failed(&'static str),
    /// The caller's per-key limit for this tool is spent.
    #[error("Rate limit for this tool reached; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The tool failed inside the server (a bug, a panic): a JSON-RPC internal error
    /// (`-32603`), never an `isError` result; a task ends `failed`.
    #[error("Internal error")]
    Internal,
}

#[cfg(test)]
mod tests;
