//! The audit event: the request id, the timestamp (cached per second), the
//! outcome of a status, and the client-supplied strings cut to [`MAX_FIELD`].

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, StatusCode};
use serde::Serialize;

/// The longest client-supplied string kept in an audit event.
pub const MAX_FIELD: usize = 256;
/// A client-supplied string as kept in the record: at most [`MAX_FIELD`] characters.
pub fn cut(s: &str) -> String {
    s.chars().take(MAX_FIELD).collect()
}

/// One audit event. It borrows from the request's records, so recording it allocates only the
/// line written.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEvent<'a> {
    pub time: Timestamp,
    pub request_id: RequestIdent,
    #[serde(serialize_with = "display_opt")]
    pub client: Option<IpAddr>,
    pub key_id: Option<&'a str>,
    pub http_method: &'a str,
    pub path: &'a str,
    pub mcp_method: Option<&'a str>,
    pub name: Option<&'a str>,
    pub era: Option<&'static str>,
    pub status: u16,
    pub rpc_error: Option<i32>,
    /// The latency in microseconds, written as milliseconds with three decimals
    /// (`latency_ms`).
    #[serde(rename = "latency_ms", serialize_with = "as_millis")]
    pub latency_us: u64,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub outcome: &'static str,
    pub file_path: Option<&'a str>,
    /// Over-limit rejections of this client summarised into this event (see
    /// [`crate::observability::summary`]); absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    /// A per-key policy decision (`denied_tool`, `key_rate_limited`, `tool_rate_limited`);
    /// absent when the policy had nothing to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<&'static str>,
}

fn as_millis<S: serde::Serializer>(micros: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(*micros as f64 / 1000.0)
}

fn display_opt<T: std::fmt::Display, S: serde::Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => serializer.collect_str(v),
        None => serializer.serialize_none(),
    }
}

/// A request id: `BOOT-N`, a random 32-bit tag of this process in hex and a counter, so ids
/// from two runs never collide in one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestIdent {
    /// A random number drawn at start, so ids from different runs differ.
    pub boot: u32,
    /// The request's number since start.
    pub n: u64,
}

impl std::fmt::Display for RequestIdent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (buf, len) = self.encode();
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| std::fmt::Error)?)
    }
}

impl Serialize for RequestIdent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl RequestIdent {
    /// The id, `BOOT-N` (8 hex digits, a dash, the counter), in a buffer of its own: at most
    /// 8 + 1 + 20 bytes.
    pub(super) fn encode(&self) -> ([u8; 29], usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 29];
        for (i, shift) in (0..8).rev().enumerate() {
            buf[i] = HEX[(self.boot >> (shift * 4)) as usize & 0xf];
        }
        buf[8] = b'-';
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(self.n).as_bytes();
        buf[9..9 + digits.len()].copy_from_slice(digits);
        (buf, 9 + digits.len())
    }

    /// As an `X-Request-Id` header value.
    pub fn header_value(&self) -> Option<HeaderValue> {
        let (buf, len) = self.encode();
        HeaderValue::from_bytes(&buf[..len]).ok()
    }
}

/// The outcome word of a status.
pub fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=399 => "ok",
        401 => "unauthorized",
        403 => "forbidden_origin",
        429 => "rate_limited",
        400..=499 => "invalid",
        _ => "error",
    }
}

/// The security event a status stands for, if any.
pub fn security_event(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        401 => Some("auth_failed"),
        403 => Some("forbidden_origin"),
        413 => Some("oversized_body"),
        429 => Some("rate_limited"),
        _ => None,
    }
}

/// An RFC 3339 UTC time with milliseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ`, kept inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Timestamp([u8; 24]);

impl Timestamp {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The time `t` as a [`Timestamp`]. The date-and-seconds part is formatted once per second per
/// thread and reused (formatting it costs more than the rest of an audit event).
pub fn rfc3339(t: SystemTime) -> Timestamp {
    thread_local! {
        static CACHE: std::cell::Cell<(u64, [u8; 24])> = const { std::cell::Cell::new((u64::MAX, [0; 24])) };
    }
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (cached, mut out) = CACHE.get();
    if cached != secs {
        let full = rfc3339_uncached(t);
        out.copy_from_slice(&full.as_bytes()[..24]);
        CACHE.set((secs, out));
    }
    let ms = d.subsec_millis();
    out[20] = b'0' + (ms / 100) as u8;
    out[21] = b'0' + (ms / 10 % 10) as u8;
    out[22] = b'0' + (ms % 10) as u8;
    Timestamp(out)
}

fn rfc3339_uncached(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // days since 1970-01-01 to a civil date (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_security_events() {
        assert_eq!(outcome(StatusCode::OK), "ok");
        assert_eq!(outcome(StatusCode::ACCEPTED), "ok");
        assert_eq!(outcome(StatusCode::UNAUTHORIZED), "unauthorized");
        assert_eq!(outcome(StatusCode::FORBIDDEN), "forbidden_origin");
        assert_eq!(outcome(StatusCode::TOO_MANY_REQUESTS), "rate_limited");
        assert_eq!(outcome(StatusCode::NOT_FOUND), "invalid");
        assert_eq!(outcome(StatusCode::INTERNAL_SERVER_ERROR), "error");
        assert_eq!(
            security_event(StatusCode::PAYLOAD_TOO_LARGE),
            Some("oversized_body")
        );
        assert_eq!(security_event(StatusCode::OK), None);
    }

    #[test]
    fn the_cached_and_uncached_formats_agree() {
        for ms in [
            0u64,
            999,
            1_795_622_400_123,
            1_795_622_400_999,
            1_795_622_401_000,
        ] {
            let t = UNIX_EPOCH + std::time::Duration::from_millis(ms);
            assert_eq!(rfc3339(t).as_str(), rfc3339_uncached(t), "{ms}");
        }
    }

    #[test]
    fn rfc3339_formats_utc_times() {
        assert_eq!(rfc3339(UNIX_EPOCH).as_str(), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_622_400_123);
        assert_eq!(rfc3339(t).as_str(), "2026-11-25T16:00:00.123Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap).as_str(), "2000-02-29T00:00:00.000Z");
    }
}
