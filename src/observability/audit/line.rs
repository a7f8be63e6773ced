//! The audit's lines, in the three shapes an event can be written in:
//!
//! - [`LineFormat::File`]: the audit file's NDJSON, one object per event, the same object as
//!   the event's `Serialize` form (a test holds the two together);
//! - [`LineFormat::LogJson`]: the diagnostic log's JSON lines (`--log-format json`): the same
//!   object with the log's `timestamp`, `level`, `target` (`audit`) and `message` in front;
//! - [`LineFormat::LogText`]: the diagnostic log's text lines, `TIME  INFO audit: request
//!   name=value ...`, the fields an event has (absent ones left out).
//!
//! Every line is written field by field (itoa, ryu, serde_json's string escaping), not through
//! `fmt` or a serde map: the derived form escapes every key and formats through `fmt`, a third
//! of the audit's cost when it was used. Client-supplied strings are JSON strings in all three
//! shapes, so a newline or a control character in them is escaped and cannot forge a line.

use std::net::IpAddr;

use super::event::{AuditEvent, Timestamp};
use crate::mcp::tasks::TaskEvent;

/// A field's name as each form writes it: `"name":` and ` name=`. The writers below are
/// inlined into the one function that lists the fields, so each name is a constant there and
/// its copy a few moves, not a call (half the cost of a line).
struct Key {
    json: &'static [u8],
    text: &'static [u8],
}

/// The [`Key`] of a field name.
macro_rules! key {
    ($name:literal) => {
        Key {
            json: concat!("\"", $name, "\":").as_bytes(),
            text: concat!(" ", $name, "=").as_bytes(),
        }
    };
}

/// The shape of the lines a sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// The audit file: NDJSON.
    File,
    /// The diagnostic log as text.
    LogText,
    /// The diagnostic log as JSON lines.
    LogJson,
}

impl LineFormat {
    /// Appends the request event `event` as one line, newline included.
    pub fn write_event(self, event: &AuditEvent<'_>, out: &mut Vec<u8>) {
        match self {
            Self::File => {
                out.push(b'{');
                fields(event, true, out);
                out.extend_from_slice(b"}\n");
            }
            Self::LogJson => {
                log_json_head(event.time, b"request", out);
                fields(event, true, out);
                out.extend_from_slice(b"}\n");
            }
            Self::LogText => {
                text_head(event.time, b"request", out);
                fields(event, false, out);
                out.push(b'\n');
            }
        }
    }

    /// Appends the task event `event`, at `time`, as one line, newline included.
    pub fn write_task(self, time: Timestamp, event: &TaskEvent, out: &mut Vec<u8>) {
        let json = match self {
            Self::File => {
                out.push(b'{');
                true
            }
            Self::LogJson => {
                log_json_head(time, b"task", out);
                true
            }
            Self::LogText => {
                text_head(time, b"task", out);
                false
            }
        };
        let mut f = Fields {
            out,
            json,
            first: true,
        };
        if json {
            f.word(key!("time"), Some(time.as_str().as_bytes()));
            f.word(key!("event"), Some(b"task"));
        }
        f.string(key!("task_event"), Some(event.event));
        f.string(key!("task_id"), Some(&event.task_id));
        f.string(key!("key_id"), Some(&event.principal));
        f.string(key!("tool"), Some(&event.tool));
        out.extend_from_slice(if json { b"}\n" } else { b"\n" });
    }
}

/// `{"timestamp":"TIME","level":"INFO","target":"audit","message":"MESSAGE",`
fn log_json_head(time: Timestamp, message: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    out.extend_from_slice(time.as_str().as_bytes());
    out.extend_from_slice(b"\",\"level\":\"INFO\",\"target\":\"audit\",\"message\":\"");
    out.extend_from_slice(message);
    out.extend_from_slice(b"\",");
}

/// `TIME  INFO audit: MESSAGE`
fn text_head(time: Timestamp, message: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(time.as_str().as_bytes());
    out.extend_from_slice(b"  INFO audit: ");
    out.extend_from_slice(message);
}

/// Writes named fields in one of two forms: JSON members (`"name":value`, an absent value
/// `null`) or text (` name=value`, an absent value left out). Strings a client sent are JSON
/// strings in both.
struct Fields<'o> {
    out: &'o mut Vec<u8>,
    json: bool,
    first: bool,
}

impl Fields<'_> {
    /// Starts a field; `false` (nothing written) for an absent value in text.
    #[inline(always)]
    fn name(&mut self, key: Key, present: bool) -> bool {
        if self.json {
            if !std::mem::take(&mut self.first) {
                self.out.push(b',');
            }
            self.out.extend_from_slice(key.json);
            true
        } else if present {
            self.out.extend_from_slice(key.text);
            true
        } else {
            false
        }
    }

    /// A string from outside (a key id, a path, a tool name): always a JSON string.
    #[inline(always)]
    fn string(&mut self, key: Key, value: Option<&str>) {
        if self.name(key, value.is_some()) {
            match value {
                Some(v) => json_string(v, self.out),
                None => self.out.extend_from_slice(b"null"),
            }
        }
    }

    /// One of our own words or forms (never a client's string): quoted in JSON, bare in text.
    #[inline(always)]
    fn word(&mut self, key: Key, value: Option<&[u8]>) {
        if self.name(key, value.is_some()) {
            match value {
                Some(v) if self.json => {
                    self.out.push(b'"');
                    self.out.extend_from_slice(v);
                    self.out.push(b'"');
                }
                Some(v) => self.out.extend_from_slice(v),
                None => self.out.extend_from_slice(b"null"),
            }
        }
    }

    #[inline(always)]
    fn int<I: itoa::Integer>(&mut self, key: Key, value: Option<I>) {
        if self.name(key, value.is_some()) {
            match value {
                Some(n) => self
                    .out
                    .extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
                None => self.out.extend_from_slice(b"null"),
            }
        }
    }

    /// Microseconds as milliseconds with three decimals (`0.094`), integers only: the same
    /// number as the event's `Serialize` form (`micros / 1000` as an `f64`), without `ryu`.
    #[inline(always)]
    fn millis(&mut self, key: Key, micros: u64) {
        self.name(key, true);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
        let fraction = micros % 1000;
        self.out.extend_from_slice(&[
            b'.',
            b'0' + (fraction / 100) as u8,
            b'0' + (fraction / 10 % 10) as u8,
            b'0' + (fraction % 10) as u8,
        ]);
    }
}

/// The event's fields: JSON members from `"time"` to the last, without the braces, or the
/// text line's ` name=value` pairs.
fn fields(event: &AuditEvent<'_>, json: bool, out: &mut Vec<u8>) {
    let mut f = Fields {
        out,
        json,
        first: true,
    };
    if json {
        f.word(key!("time"), Some(event.time.as_str().as_bytes()));
    }
    let (id, id_len) = event.request_id.encode();
    f.word(key!("request_id"), Some(&id[..id_len]));
    let (ip, ip_len) = event.client.map_or(([0; 48], 0), address);
    f.word(key!("client"), event.client.map(|_| &ip[..ip_len]));
    f.string(key!("key_id"), event.key_id);
    f.word(key!("http_method"), Some(event.http_method.as_bytes()));
    f.string(key!("path"), Some(event.path));
    f.string(key!("mcp_method"), event.mcp_method);
    f.string(key!("name"), event.name);
    f.word(key!("era"), event.era.map(str::as_bytes));
    f.int(key!("status"), Some(event.status));
    f.int(key!("rpc_error"), event.rpc_error);
    f.millis(key!("latency_ms"), event.latency_us);
    f.int(key!("bytes_in"), event.bytes_in);
    f.int(key!("bytes_out"), event.bytes_out);
    f.word(key!("outcome"), Some(event.outcome.as_bytes()));
    f.string(key!("file_path"), event.file_path);
    // Left out of the JSON too when absent (the event's `Serialize` skips them).
    if event.suppressed.is_some() {
        f.int(key!("suppressed"), event.suppressed);
    }
    if event.policy.is_some() {
        f.word(key!("policy"), event.policy.map(str::as_bytes));
    }
}

/// An address, dotted (IPv4, without `fmt`) or as `Display` has it (IPv6), in a buffer of its
/// own: at most 45 bytes.
fn address(ip: IpAddr) -> ([u8; 48], usize) {
    use std::io::Write;
    let mut buf = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = match ip {
        IpAddr::V4(v4) => v4
            .octets()
            .into_iter()
            .enumerate()
            .try_for_each(|(i, octet)| {
                if i > 0 {
                    cursor.write_all(b".")?;
                }
                cursor.write_all(itoa::Buffer::new().format(octet).as_bytes())
            }),
        IpAddr::V6(v6) => write!(cursor, "{v6}"),
    };
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    (buf, len)
}

/// A JSON string: copied between quotes when nothing in it needs escaping (the usual key id,
/// path or tool name), else escaped by serde_json.
#[inline(always)]
fn json_string(value: &str, out: &mut Vec<u8>) {
    if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observability::audit::event::{RequestIdent, rfc3339};
    use axum::http::HeaderValue;
    use serde_json::Value;
    use std::time::SystemTime;

    const AWKWARD: &str =
        "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} é 🦀 \u{2028}";

    fn full_event() -> AuditEvent<'static> {
        AuditEvent {
            time: rfc3339(SystemTime::now()),
            request_id: RequestIdent {
                boot: 0x00ab_cdef,
                n: u64::MAX,
            },
            client: Some("203.0.113.7".parse().expect("ip")),
            key_id: Some("ops"),
            http_method: "POST",
            path: AWKWARD,
            mcp_method: Some("tools/call"),
            name: Some(AWKWARD),
            era: Some("2026"),
            status: 200,
            rpc_error: Some(-32602),
            latency_us: 123_456,
            bytes_in: Some(0),
            bytes_out: Some(u64::MAX),
            outcome: "ok",
            file_path: Some(AWKWARD),
            suppressed: Some(7),
            policy: Some("denied_tool"),
        }
    }

    fn line(format: LineFormat, event: &AuditEvent<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        format.write_event(event, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        out
    }

    #[test]
    fn the_file_line_is_the_serialized_event() {
        let mut event = full_event();
        let check = |event: &AuditEvent| {
            let written: Value =
                serde_json::from_slice(&line(LineFormat::File, event)).expect("json");
            assert_eq!(written, serde_json::to_value(event).expect("serialize"));
        };
        check(&event);
        event.client = Some("2001:db8::1".parse().expect("ip"));
        event.latency_us = 94;
        check(&event);
        event.client = None;
        event.key_id = None;
        event.mcp_method = None;
        event.name = None;
        event.era = None;
        event.rpc_error = None;
        event.bytes_in = None;
        event.bytes_out = None;
        event.file_path = None;
        check(&event);
        assert_eq!(
            event.request_id.header_value(),
            Some(HeaderValue::from_static("00abcdef-18446744073709551615"))
        );
    }

    #[test]
    fn the_json_log_line_is_the_event_with_the_logs_own_members() {
        let event = full_event();
        let written: Value =
            serde_json::from_slice(&line(LineFormat::LogJson, &event)).expect("json");
        let mut expected = serde_json::to_value(&event).expect("serialize");
        let members = expected.as_object_mut().expect("object");
        members.insert("timestamp".into(), event.time.as_str().into());
        members.insert("level".into(), "INFO".into());
        members.insert("target".into(), "audit".into());
        members.insert("message".into(), "request".into());
        assert_eq!(written, expected);
    }

    #[test]
    fn the_text_line_names_each_field_and_escapes_what_a_client_sent() {
        let event = full_event();
        let text = String::from_utf8(line(LineFormat::LogText, &event)).expect("utf-8");
        let escaped = serde_json::to_string(AWKWARD).expect("json");
        assert!(
            text.starts_with(&format!("{}  INFO audit: request ", event.time.as_str())),
            "{text}"
        );
        for field in [
            "request_id=00abcdef-18446744073709551615".to_owned(),
            "client=203.0.113.7".into(),
            "key_id=\"ops\"".into(),
            "http_method=POST".into(),
            format!("path={escaped}"),
            "mcp_method=\"tools/call\"".into(),
            format!("name={escaped}"),
            "era=2026".into(),
            "status=200".into(),
            "rpc_error=-32602".into(),
            "latency_ms=123.456".into(),
            "bytes_in=0".into(),
            format!("bytes_out={}", u64::MAX),
            "outcome=ok".into(),
            format!("file_path={escaped}"),
            "suppressed=7".into(),
            "policy=denied_tool".into(),
        ] {
            assert!(text.contains(&format!(" {field}")), "{field} in {text}");
        }
        let mut bare = full_event();
        bare.client = None;
        bare.key_id = None;
        bare.file_path = None;
        let text = String::from_utf8(line(LineFormat::LogText, &bare)).expect("utf-8");
        for absent in ["client=", "key_id=", "file_path="] {
            assert!(!text.contains(absent), "{absent} left out: {text}");
        }
    }

    #[test]
    fn latencies_are_milliseconds_with_three_decimals() {
        let mut event = full_event();
        for (micros, written) in [
            (0, "0.000"),
            (94, "0.094"),
            (1_000, "1.000"),
            (123_456, "123.456"),
            (u64::MAX, "18446744073709551.615"),
        ] {
            event.latency_us = micros;
            let text = String::from_utf8(line(LineFormat::LogText, &event)).expect("utf-8");
            assert!(text.contains(&format!(" latency_ms={written} ")), "{text}");
            let json: Value =
                serde_json::from_slice(&line(LineFormat::File, &event)).expect("json");
            assert_eq!(
                json["latency_ms"],
                serde_json::json!(micros as f64 / 1000.0)
            );
        }
    }

    #[test]
    fn task_lines_name_the_key_id_tool_and_task_in_every_shape() {
        let event = TaskEvent {
            event: "cancelled",
            task_id: "T0ab".into(),
            principal: "ops\"\n{".into(),
            tool: "search_files".into(),
        };
        let time = rfc3339(SystemTime::now());
        for format in [LineFormat::File, LineFormat::LogJson, LineFormat::LogText] {
            let mut out = Vec::new();
            format.write_task(time, &event, &mut out);
            assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
            if format == LineFormat::LogText {
                let text = String::from_utf8(out).expect("utf-8");
                assert!(
                    text.contains(" task_event=\"cancelled\" task_id=\"T0ab\"")
                        && text.contains(" key_id=\"ops\\\"\\n{\" tool=\"search_files\""),
                    "{text}"
                );
                continue;
            }
            let line: Value = serde_json::from_slice(&out).expect("JSON");
            assert_eq!(line["event"], "task");
            assert_eq!(line["time"], time.as_str());
            assert_eq!(line["task_event"], "cancelled");
            assert_eq!(line["task_id"], "T0ab");
            assert_eq!(line["key_id"], "ops\"\n{", "escaped, so no forged line");
            assert_eq!(line["tool"], "search_files");
            if format == LineFormat::LogJson {
                assert_eq!(line["target"], "audit");
                assert_eq!(line["level"], "INFO");
            }
        }
    }
}
