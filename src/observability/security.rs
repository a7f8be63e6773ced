//! Security events: counted always (`mcp_security_events_total`), logged (target `security`)
//! at most [`SECURITY_LOG_PER_SECOND`] times a second per kind, each logged line saying how many
//! were left out before it, so a flood cannot flood the log.

use std::net::IpAddr;
use std::sync::Mutex;

use tokio::time::Instant;

use crate::observability::audit::RequestIdent;

/// Security events of one kind logged per second, at most; the rest are counted (metrics)
/// and summarised in the next line logged, so a flood cannot flood the log.
pub const SECURITY_LOG_PER_SECOND: u32 = 20;

/// Limits security-event log lines per kind and second.
#[derive(Debug, Default)]
pub struct LogThrottle {
    /// kind → (start of the current second, lines logged in it, lines suppressed since the last)
    state: Mutex<std::collections::HashMap<&'static str, (Instant, u32, u64)>>,
}

impl LogThrottle {
    /// Whether to log an event of `kind` now; if so, how many were suppressed before it.
    pub fn admit(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let entry = state.entry(kind).or_insert((now, 0, 0));
        if now.saturating_duration_since(entry.0) >= std::time::Duration::from_secs(1) {
            entry.0 = now;
            entry.1 = 0;
        }
        if entry.1 < SECURITY_LOG_PER_SECOND {
            entry.1 += 1;
            let suppressed = entry.2;
            entry.2 = 0;
            Some(suppressed)
        } else {
            entry.2 += 1;
            None
        }
    }
}

/// An optional client address as a log field (`-` when unknown).
pub struct Client(pub Option<IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Where a security event happened when it happened inside a request.
#[derive(Debug, Clone, Copy)]
pub struct InRequest<'a> {
    pub request_id: &'a RequestIdent,
    pub path: &'a str,
    pub file_path: Option<&'a str>,
}

/// Logs a security event if the throttle admits it: the one shape of a security log line.
pub fn log(
    throttle: &LogThrottle,
    kind: &'static str,
    client: Option<IpAddr>,
    at: Option<InRequest<'_>>,
) {
    let Some(suppressed) = throttle.admit(kind, Instant::now()) else {
        return;
    };
    tracing::warn!(
        target: "security",
        event = kind,
        request_id = at.map(|a| tracing::field::display(a.request_id)),
        client = %Client(client),
        path = at.map(|a| tracing::field::debug(a.path)),
        file_path = at.and_then(|a| a.file_path).map(tracing::field::debug),
        suppressed_before = suppressed,
        "security event"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn security_log_lines_are_throttled_per_kind_and_the_rest_counted() {
        let t = LogThrottle::default();
        let now = Instant::now();
        for _ in 0..SECURITY_LOG_PER_SECOND {
            assert_eq!(t.admit("auth_failed", now), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(t.admit("auth_failed", now), None);
        }
        assert_eq!(t.admit("rate_limited", now), Some(0), "kinds are separate");
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert_eq!(
            t.admit("auth_failed", Instant::now()),
            Some(5),
            "the next line says how many were not logged"
        );
    }
}
