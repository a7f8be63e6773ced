//! Shared by the targets: headers from fuzz bytes.
#![allow(dead_code)]

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// `name: value` lines (split on `\n`) as a header map; lines that are not valid HTTP are
/// skipped. Names given here are used as they are, so a target can aim at one header by
/// prefixing the data with `fixed`.
pub fn headers(data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    map
}

/// Every value of `name` in `data`, as header values of that one name.
pub fn values_of(name: &'static str, data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for value in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(name), v);
        }
    }
    map
}
