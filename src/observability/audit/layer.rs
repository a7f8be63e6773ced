//! The audit policy: notes a request on the way in, and on the way out writes its one audit
//! event, counts it in the metrics, logs its security event and names it in `X-Request-Id`.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::SystemTime;

use axum::extract::Request;
use axum::http::{HeaderName, Method, header};
use axum::response::Response;
use tokio::time::Instant;

use super::event::{AuditEvent, RequestIdent, cut, outcome, rfc3339, security_event};
use crate::error::{ErrorCode, OverLimit, Rejection};
use crate::mcp::context::{McpCall, NoteCell};
use crate::mcp::method::Method as McpMethod;
use crate::mcp::version::Era;
use crate::observability::handle::Observability;
use crate::observability::metrics::method_label;
use crate::observability::security::InRequest;
use crate::policy::RequestPolicy;
use crate::security::auth::Authenticated;
use crate::security::client_ip::client_ip;
use crate::security::key_policy::PolicyDecision;

/// The response header that names the request's audit event.
static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Policy: one audit event per request, security events, metrics, `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct Audit(pub Observability);

/// What the audit notes of a request before it goes on.
#[derive(Debug)]
pub struct Pending {
    obs: Observability,
    started: Instant,
    request_id: RequestIdent,
    client: Option<IpAddr>,
    http_method: Method,
    path: Cow<'static, str>,
    bytes_in: Option<u64>,
}

impl RequestPolicy for Audit {
    type Carry = Pending;

    fn before(&self, request: &mut Request) -> Result<Pending, Rejection> {
        let path = match request.uri().path() {
            "/mcp" => Cow::Borrowed("/mcp"),
            other => Cow::Owned(cut(other)),
        };
        Ok(Pending {
            obs: self.0.clone(),
            started: Instant::now(),
            request_id: self.0.next_id(),
            client: client_ip(request.extensions()),
            http_method: request.method().clone(),
            path,
            bytes_in: request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        })
    }

    fn after(pending: Pending, response: &mut Response) {
        pending.finish(response);
    }
}

impl Pending {
    fn finish(self, response: &mut Response) {
        let obs = &self.obs;
        let latency = self.started.elapsed();
        let status = response.status();
        let ext = response.extensions();
        let call = ext.get::<McpCall>();
        let note = ext
            .get::<NoteCell>()
            .map(|n| n.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        let policy = ext
            .get::<PolicyDecision>()
            .copied()
            .or(note.decision)
            .map(|d| d.0);
        let event = AuditEvent {
            time: rfc3339(SystemTime::now()),
            request_id: self.request_id,
            client: self.client,
            key_id: ext.get::<Authenticated>().map(|a| a.principal.name()),
            http_method: self.http_method.as_str(),
            path: &self.path,
            mcp_method: call.map(|c| &*c.method),
            name: call.and_then(|c| c.name.as_deref()),
            era: call.and_then(|c| c.era).map(|e| match e {
                Era::Legacy => "2025",
                Era::Modern => "2026",
            }),
            status: status.as_u16(),
            rpc_error: ext.get::<ErrorCode>().map(|c| c.0),
            // Microseconds are the precision kept: `0.094`, not `0.09357299999999999`.
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            bytes_in: self.bytes_in,
            bytes_out: axum::body::HttpBody::size_hint(response.body()).exact(),
            outcome: outcome(status),
            file_path: note.path.as_deref(),
            suppressed: None,
            policy,
        };
        obs.metrics
            .request(event.outcome, method_label(event.mcp_method), latency);
        if event.mcp_method == McpMethod::ToolsCall.known_name()
            && let (Some(tool), Some(error)) = (event.name, note.tool_error)
        {
            obs.metrics.tool_call(tool, error);
        }
        // A policy decision names the event more precisely than its status does.
        let security = policy
            .or(security_event(status))
            .or(note.escape.then_some("sandbox_escape"));
        if let Some(kind) = security {
            obs.request_security_event(
                kind,
                event.client,
                InRequest {
                    request_id: &event.request_id,
                    path: event.path,
                    file_path: event.file_path,
                },
            );
        }
        // Over its budget, a client's rejections are summarised, not written one by one.
        let mut event = event;
        let written = if ext.get::<OverLimit>().is_some() {
            obs.summary
                .admit(self.client, Instant::now())
                .map(|n| event.suppressed = (n > 0).then_some(n))
                .is_some()
        } else {
            true
        };
        if written {
            obs.audit.record(&event);
        }
        if let Some(v) = event.request_id.header_value() {
            response.headers_mut().insert(REQUEST_ID.clone(), v);
        }
    }
}
