//! `OriginPolicy`: the one allow-list behind the `Origin` check, the `Host` check and CORS.
//!
//! Threat: DNS rebinding, where a web page the user visits re-points its own host name at the
//! server's address and then talks to it from the browser. Such a request always carries the
//! attacker's name in `Host` and `Origin`, so:
//! - `Host` must name an allowed host. By default these are `localhost`, `127.0.0.1` and
//!   `[::1]` on any port; `--allow-host NAME[:PORT]` adds or replaces them, and
//!   `--allow-any-host` switches the check off. A non-loopback bind must choose one of the two
//!   (the configuration is refused otherwise), since the right names are only known there.
//! - A present `Origin` must be allowed: exactly one of `--allow-origin` (scheme, host and port
//!   compared after normalising case and default ports), or, when no `--allow-origin` is given
//!   and the server listens on loopback, a loopback origin (`http(s)://localhost|127.0.0.1|[::1]`
//!   on any port), as the official SDKs accept. Everything else, `null` included, is refused.
//! - A request without `Origin` (curl, native clients) passes: it cannot come from a browser
//!   page.
//!
//! A refusal is 403, before authentication.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::response::Response;

use crate::error::Rejection;
use crate::policy::RequestPolicy;

/// Which `Host` values are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// Each entry is a lowercase host, optionally with `:port`.
    List(Vec<String>),
    Any,
}

/// The allow-lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Normalised `scheme://host[:port]` origins.
    origins: Vec<String>,
    /// Accept loopback origins on any port (loopback bind, no explicit origins).
    loopback_origins: bool,
    hosts: HostRule,
}

/// The loopback names accepted by default.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl OriginPolicy {
    /// Builds the policy; `origins` must already be normalised (see [`normalise_origin`]).
    pub fn new(origins: Vec<String>, hosts: HostRule, loopback_bind: bool) -> Self {
        let loopback_origins = origins.is_empty() && loopback_bind;
        Self {
            origins,
            loopback_origins,
            hosts,
        }
    }

    /// Whether a browser page at `origin` may talk to this server.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let Some(normal) = normalise_origin(origin) else {
            return false;
        };
        if self.origins.contains(&normal) {
            return true;
        }
        self.loopback_origins && {
            let host = normal.split_once("://").map_or("", |(_, rest)| rest);
            let name = split_port(host).0;
            LOOPBACK_HOSTS.contains(&name)
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        match &self.hosts {
            HostRule::Any => true,
            HostRule::List(list) => {
                // Entries are lowercase, so comparing without case is comparing the lowercase
                // host (without allocating one).
                let (name, _) = split_port(host);
                list.iter().any(|entry| {
                    entry.eq_ignore_ascii_case(host) || entry.eq_ignore_ascii_case(name)
                })
            }
        }
    }

    /// Checks `Host` and `Origin`.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or(Rejection::ForbiddenHost)?;
        if !self.host_allowed(host) {
            return Err(Rejection::ForbiddenHost);
        }
        match headers.get(header::ORIGIN) {
            None => Ok(()),
            Some(origin) => match origin.to_str() {
                Ok(o) if self.origin_allowed(o) => Ok(()),
                _ => Err(Rejection::ForbiddenOrigin),
            },
        }
    }
}

/// Splits `host[:port]` (with `[v6]` brackets kept on the name).
fn split_port(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        match host.find(']') {
            Some(end) => {
                let (name, rest) = host.split_at(end + 1);
                (name, rest.strip_prefix(':'))
            }
            None => (host, None),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => (name, Some(port)),
            _ => (host, None),
        }
    }
}

/// Whether `name` is a host as an origin serialises it: a DNS name or IPv4 address (letters,
/// digits, `-`, `.`; internationalised names arrive in their ASCII form) or a bracketed IPv6
/// address.
fn is_origin_host(name: &str) -> bool {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
    }
}

/// `scheme://host[:port]` in lowercase with the scheme's default port dropped, or `None` if
/// this is not an origin (a path, user info, an empty host, `null`, or any character a host
/// cannot hold, whitespace and control characters included). Normalising twice changes
/// nothing (found by the `origin_host` fuzz target: a host with a newline inside lost it to
/// the second trim).
pub fn normalise_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, rest) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return None;
    }
    let (name, port) = split_port(rest);
    if !is_origin_host(name) {
        return None;
    }
    match port {
        None => Some(format!("{scheme}://{name}")),
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let p: u16 = p.parse().ok()?;
            let default = if scheme == "http" { 80 } else { 443 };
            Some(if p == default {
                format!("{scheme}://{name}")
            } else {
                format!("{scheme}://{name}:{p}")
            })
        }
    }
}

/// Policy: 403 for a foreign `Host` or `Origin`.
#[derive(Debug, Clone)]
pub struct RequireAllowedOrigin(pub Arc<OriginPolicy>);

impl RequestPolicy for RequireAllowedOrigin {
    type Carry = ();

    fn before(&self, request: &mut Request) -> Result<(), Rejection> {
        self.0.check(request.headers())
    }

    fn after((): (), _: &mut Response) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(header::HOST, HeaderValue::from_str(v).expect("host"));
        }
        if let Some(v) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(v).expect("origin"));
        }
        h
    }

    fn default_policy() -> OriginPolicy {
        OriginPolicy::new(
            vec![],
            HostRule::List(LOOPBACK_HOSTS.map(String::from).to_vec()),
            true,
        )
    }

    #[test]
    fn default_policy_accepts_loopback_and_refuses_everything_else() {
        let p = default_policy();
        for (host, origin) in [
            ("127.0.0.1:8080", None),
            ("localhost", None),
            ("[::1]:9", None),
            ("LOCALHOST:1", Some("http://localhost:5173")),
            ("127.0.0.1:8080", Some("http://127.0.0.1:3000")),
            ("127.0.0.1:8080", Some("https://[::1]")),
        ] {
            assert_eq!(
                p.check(&headers(Some(host), origin)),
                Ok(()),
                "{host} {origin:?}"
            );
        }
        let cases = [
            (
                Some("evil.example.com"),
                Some("http://evil.example.com"),
                Rejection::ForbiddenHost,
            ),
            (Some("evil.example.com"), None, Rejection::ForbiddenHost),
            (None, None, Rejection::ForbiddenHost),
            (Some("127.0.0.1.evil.com"), None, Rejection::ForbiddenHost),
            (
                Some("127.0.0.1:8080"),
                Some("http://evil.example.com"),
                Rejection::ForbiddenOrigin,
            ),
            (
                Some("127.0.0.1:8080"),
                Some("null"),
                Rejection::ForbiddenOrigin,
            ),
            (
                Some("127.0.0.1:8080"),
                Some("http://localhost.evil.com"),
                Rejection::ForbiddenOrigin,
            ),
            (
                Some("127.0.0.1:8080"),
                Some("file://"),
                Rejection::ForbiddenOrigin,
            ),
        ];
        for (host, origin, expected) in cases {
            assert_eq!(
                p.check(&headers(host, origin)),
                Err(expected),
                "{host:?} {origin:?}"
            );
        }
    }

    #[test]
    fn explicit_origins_are_exact_and_replace_the_loopback_default() {
        let p = OriginPolicy::new(
            vec![normalise_origin("https://app.example.com").expect("origin")],
            HostRule::List(vec!["mcp.example.com".into()]),
            true,
        );
        let ok = headers(Some("mcp.example.com"), Some("https://APP.example.com:443"));
        assert_eq!(p.check(&ok), Ok(()));
        for origin in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://example.com",
            "http://localhost:3000",
        ] {
            assert_eq!(
                p.check(&headers(Some("mcp.example.com"), Some(origin))),
                Err(Rejection::ForbiddenOrigin),
                "{origin}"
            );
        }
        assert_eq!(
            p.check(&headers(Some("localhost"), None)),
            Err(Rejection::ForbiddenHost)
        );
    }

    #[test]
    fn hosts_can_be_pinned_to_a_port_or_opened() {
        let p = OriginPolicy::new(
            vec![],
            HostRule::List(vec!["mcp.internal:8443".into()]),
            false,
        );
        assert_eq!(p.check(&headers(Some("mcp.internal:8443"), None)), Ok(()));
        assert_eq!(
            p.check(&headers(Some("mcp.internal:80"), None)),
            Err(Rejection::ForbiddenHost)
        );
        let any = OriginPolicy::new(vec![], HostRule::Any, false);
        assert_eq!(any.check(&headers(Some("whatever"), None)), Ok(()));
        assert_eq!(
            any.check(&headers(Some("whatever"), Some("http://localhost"))),
            Err(Rejection::ForbiddenOrigin),
            "no loopback-origin default off loopback"
        );
    }

    #[test]
    fn origins_normalise() {
        assert_eq!(
            normalise_origin("HTTPS://Example.COM:443").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(
            normalise_origin("http://example.com:8080").as_deref(),
            Some("http://example.com:8080")
        );
        assert_eq!(
            normalise_origin("http://[::1]:80").as_deref(),
            Some("http://[::1]")
        );
        for bad in [
            "null",
            "example.com",
            "http://",
            "http://a/b",
            "ftp://x",
            "http://u@x",
            "http://x:99999",
            "http://d\u{fffd}\n:80",
            "http://a b",
            "http://a\tb",
            "http://[zz::1]",
            "http://x:",
            "http://x:+80",
        ] {
            assert_eq!(normalise_origin(bad), None, "{bad}");
        }
    }
}
