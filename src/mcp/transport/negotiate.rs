//! The content negotiation of `/mcp`: the one parser of `Accept`, the `Content-Type` check, the
//! declared `Content-Length` and `Last-Event-ID`.
//!
//! `Accept` is read leniently: a single answer is JSON unless the client accepts only
//! `text/event-stream`; a request that emits messages before its result is streamed as SSE when
//! the client accepts it (otherwise those messages are dropped); 406 only when the client
//! accepts neither. A range with `q=0` is a refusal and counts for nothing. `Content-Type` must
//! be `application/json` (415).

use axum::http::{HeaderMap, header};

use crate::error::Rejection;

/// How the client wants a single-message response framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Json,
    Sse,
}

/// What a client's `Accept` headers admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accept {
    /// At least one `Accept` header was sent.
    pub sent: bool,
    pub json: bool,
    pub sse: bool,
}

impl Accept {
    /// Reads every `Accept` header; ranges with `q=0` and values that are not text are skipped.
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut accept = Self::default();
        for value in headers.get_all(header::ACCEPT) {
            accept.sent = true;
            let Ok(value) = value.to_str() else { continue };
            for range in value.split(',') {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or_default().trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                if refused {
                    continue;
                }
                let is = |m: &str| media.eq_ignore_ascii_case(m);
                if is("*/*") {
                    (accept.json, accept.sse) = (true, true);
                } else if is("application/json") || is("application/*") {
                    accept.json = true;
                } else if is("text/event-stream") || is("text/*") {
                    accept.sse = true;
                }
            }
        }
        accept
    }

    /// The framing of a single answer (see the module doc).
    pub fn framing(self) -> Result<Framing, Rejection> {
        match (self.sent, self.json, self.sse) {
            (false, _, _) | (_, true, _) => Ok(Framing::Json),
            (true, false, true) => Ok(Framing::Sse),
            (true, false, false) => Err(Rejection::NotAcceptable),
        }
    }
}

/// How a response may be framed.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub framing: Framing,
    /// The client accepts a stream of messages before the result.
    pub stream: bool,
}

impl Reply {
    /// The framing a request's `Accept` headers ask for; 406 when they admit neither.
    pub fn negotiate(headers: &HeaderMap) -> Result<Self, Rejection> {
        let accept = Accept::parse(headers);
        Ok(Self {
            framing: accept.framing()?,
            stream: accept.sse,
        })
    }
}

/// Whether `Content-Type` is `application/json` (parameters such as `charset` allowed).
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The `Content-Length` a request declares (hyper has already refused one that does not parse
/// or that disagrees with another).
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The `Last-Event-ID` a resuming client sends: one of the event ids this server hands out (an
/// unsigned integer); anything else is no resumption.
pub fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn accept_is_lenient_but_not_blind() {
        let cases: [(&[&str], Result<Framing, Rejection>); 9] = [
            (&[], Ok(Framing::Json)),
            (&["*/*"], Ok(Framing::Json)),
            (&["application/json"], Ok(Framing::Json)),
            (&["application/json, text/event-stream"], Ok(Framing::Json)),
            (&["text/event-stream"], Ok(Framing::Sse)),
            (&["TEXT/EVENT-STREAM; charset=utf-8"], Ok(Framing::Sse)),
            (&["text/html"], Err(Rejection::NotAcceptable)),
            (
                &["application/json;q=0, text/event-stream"],
                Ok(Framing::Sse),
            ),
            (
                &["application/xml", "image/png"],
                Err(Rejection::NotAcceptable),
            ),
        ];
        for (values, expected) in cases {
            assert_eq!(
                Accept::parse(&accept(values)).framing(),
                expected,
                "{values:?}"
            );
        }
    }

    #[test]
    fn a_stream_refused_with_q_zero_is_not_accepted() {
        let cases: [(&[&str], bool); 6] = [
            (&[], false),
            (&["application/json"], false),
            (&["application/json, text/event-stream"], true),
            (&["text/*"], true),
            (&["*/*"], true),
            (&["application/json, text/event-stream;q=0"], false),
        ];
        for (values, sse) in cases {
            assert_eq!(Accept::parse(&accept(values)).sse, sse, "{values:?}");
        }
    }

    #[test]
    fn content_type_must_be_json() {
        let mut h = HeaderMap::new();
        assert!(!is_json_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_json_content_type(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json_content_type(&h));
    }
}
