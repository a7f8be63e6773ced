//! [`Observability`]: what every layer and background task that reports holds: the audit
//! sink, the metrics, the summary of over-limit rejections, and the security-event throttle.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use axum::http::StatusCode;
use tokio::time::Instant;

use super::audit::{AuditEvent, AuditSink, RequestIdent, rfc3339};
use super::metrics::Metrics;
use super::security::{self, InRequest, LogThrottle};
use super::summary::RejectionSummary;

/// What the audit policy needs.
#[derive(Debug, Clone)]
pub struct Observability {
    pub audit: Arc<AuditSink>,
    pub metrics: Arc<Metrics>,
    pub summary: Arc<RejectionSummary>,
    throttle: Arc<LogThrottle>,
    boot: u32,
    counter: Arc<AtomicU64>,
}

impl Observability {
    pub fn new(audit: Arc<AuditSink>, metrics: Arc<Metrics>) -> Self {
        let boot = crate::keys::random_token(4).ok().map_or(0, |t| {
            t.bytes()
                .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
        });
        Self {
            audit,
            metrics,
            summary: Arc::new(RejectionSummary::new(std::time::Duration::from_secs(60))),
            throttle: Arc::new(LogThrottle::default()),
            boot,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Over-limit rejections are summarised per this window (the rate-limit window).
    pub fn with_summary_window(mut self, window: std::time::Duration) -> Self {
        self.summary = Arc::new(RejectionSummary::new(window));
        self
    }

    /// Writes a summary event for every client whose over-limit rejections were only counted
    /// and whose window has passed (`all`: every one, at shutdown).
    pub fn flush_summaries(&self, all: bool) {
        let pending = if all {
            self.summary.drain_all()
        } else {
            self.summary.drain_expired(Instant::now())
        };
        for (client, suppressed) in pending {
            let event = AuditEvent {
                time: rfc3339(SystemTime::now()),
                request_id: self.next_id(),
                client,
                key_id: None,
                http_method: "-",
                path: "-",
                mcp_method: None,
                name: None,
                era: None,
                status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
                rpc_error: None,
                latency_us: 0,
                bytes_in: None,
                bytes_out: None,
                outcome: "rate_limited",
                file_path: None,
                suppressed: Some(suppressed),
                policy: None,
            };
            self.audit.record(&event);
        }
    }

    /// Flushes summaries every half window until the task is aborted.
    pub fn spawn_summary_flusher(&self) -> tokio::task::JoinHandle<()> {
        let obs = self.clone();
        let every = (self.summary.window() / 2).max(std::time::Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                obs.flush_summaries(false);
            }
        })
    }

    /// A security event outside a request (a refused connection, a failed key reload): counted
    /// always, logged at most a few times a second per kind.
    pub fn security_event(&self, kind: &'static str, client: Option<IpAddr>) {
        self.metrics.security_event(kind);
        security::log(&self.throttle, kind, client, None);
    }

    /// A security event of a request: counted, and logged as [`Self::security_event`] is, with
    /// the request's id and path.
    pub fn request_security_event(
        &self,
        kind: &'static str,
        client: Option<IpAddr>,
        at: InRequest<'_>,
    ) {
        self.metrics.security_event(kind);
        security::log(&self.throttle, kind, client, Some(at));
    }

    pub fn next_id(&self) -> RequestIdent {
        RequestIdent {
            boot: self.boot,
            n: self.counter.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }
}
