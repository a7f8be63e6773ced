//! The only reader of the client's address.
//!
//! The client is the TCP peer. Only when the peer is a trusted proxy (`--trusted-proxy CIDR`)
//! are forwarded headers read, and then the client is the right-most address in the chain that
//! is not itself a trusted proxy: every hop to the right of it was appended by a proxy we trust,
//! anything to its left was written by the client and may be forged. Exactly one header is read,
//! the one the proxy writes (`--forwarded-header`, default `x-forwarded-for`); the other is
//! ignored even when present, because a proxy that sets one usually passes the other through as
//! the client sent it (nginx with `$proxy_add_x_forwarded_for` forwards a client's own
//! `Forwarded` untouched), and reading it would let the client name its own address. An address
//! that does not parse (`unknown`, an obfuscated identifier) ends the walk at the last trusted
//! hop. Without `--trusted-proxy` the headers are ignored entirely.
//!
//! The [`ResolveClientIp`] policy runs first and stores a [`ClientIp`]; everything after it (rate
//! limits, audit) reads that through [`client_ip`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap};
use axum::response::Response;
use ipnet::IpNet;

use crate::error::Rejection;
use crate::policy::RequestPolicy;

/// The resolved client address of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The forwarded header a trusted proxy writes: the only one read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, ...`
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1, ...`
    Forwarded,
}

/// The trusted proxies, and the header they write.
#[derive(Debug, Clone, Default)]
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
    header: ForwardedHeader,
}

impl ClientIpResolver {
    pub fn new(trusted: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { trusted, header }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        !self.trusted.is_empty() && self.is_trusted(ip)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client address for a request from `peer` with these headers.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.trusted.is_empty() || !self.is_trusted(peer) {
            return peer;
        }
        let chain: Vec<Option<IpAddr>> = match self.header {
            ForwardedHeader::Forwarded => headers
                .get_all("forwarded")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(forwarded_for)
                .collect(),
            ForwardedHeader::XForwardedFor => headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|s| parse_addr(s.trim()))
                .collect(),
        };
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) if self.is_trusted(client) => client = *ip,
                _ => break,
            }
        }
        client
    }
}

/// The `for=` address of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        parse_addr(value.trim().trim_matches('"'))
    })
}

/// An address, optionally with a port (`1.2.3.4:80`, `[::1]:80`, `::1`).
fn parse_addr(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip()).or_else(|| {
        s.strip_prefix('[')
            .and_then(|rest| rest.split(']').next())
            .and_then(|inner| inner.parse().ok())
    })
}

/// The client's address as resolved for this request (the TCP peer if no policy ran).
pub fn client_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<ClientIp>().map(|c| c.0).or_else(|| {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip())
    })
}

/// Policy: resolves the client address once and stores it on the request.
#[derive(Debug, Clone)]
pub struct ResolveClientIp(pub Arc<ClientIpResolver>);

impl RequestPolicy for ResolveClientIp {
    type Carry = ();

    fn before(&self, request: &mut Request) -> Result<(), Rejection> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(a)| a.ip());
        let ip = self.0.resolve(peer, request.headers());
        // [`client_ip`] falls back to the peer: only a forwarded address needs storing.
        if ip != peer {
            request.extensions_mut().insert(ClientIp(ip));
        }
        Ok(())
    }

    fn after((): (), _: &mut Response) {}
}

/// The identity of a client address: an IPv4 address (IPv4-mapped IPv6 included) as itself, an
/// IPv6 address as its first `ipv6_prefix` bits (one holder of a /64 has 2^64 addresses).
pub fn client_key(ip: IpAddr, ipv6_prefix: u8) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => {
                let bits = u128::from(v6);
                let prefix = u32::from(ipv6_prefix.min(128));
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - prefix)
                };
                // set the top bit of the unused space so a v6 prefix never equals a v4 key
                (bits & mask) | 1
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    fn proxies_writing(header: ForwardedHeader) -> ClientIpResolver {
        ClientIpResolver::new(
            vec![
                "10.0.0.0/8".parse().expect("net"),
                "::1/128".parse().expect("net"),
            ],
            header,
        )
    }

    fn proxies() -> ClientIpResolver {
        proxies_writing(ForwardedHeader::XForwardedFor)
    }

    #[test]
    fn without_trusted_proxies_forwarded_headers_are_ignored() {
        let r = ClientIpResolver::default();
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_another_address() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(proxies().resolve(ip("203.0.113.9"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let r = proxies();
        let cases = [
            (vec![("x-forwarded-for", "1.2.3.4")], "1.2.3.4"),
            (vec![("x-forwarded-for", "6.6.6.6, 1.2.3.4")], "1.2.3.4"),
            (
                vec![("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.1.1.1")],
                "1.2.3.4",
            ),
            (
                vec![
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "1.2.3.4"),
                ],
                "1.2.3.4",
            ),
            (vec![("x-forwarded-for", "garbage, 10.2.2.2")], "10.2.2.2"),
            (vec![], "10.0.0.5"),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                r.resolve(ip("10.0.0.5"), &headers(&pairs)),
                ip(expected),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn forwarded_is_read_when_configured() {
        let r = proxies_writing(ForwardedHeader::Forwarded);
        let cases = [
            (
                vec![(
                    "forwarded",
                    "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
                )],
                "2001:db8::7",
            ),
            (vec![("forwarded", "For=1.2.3.4:80")], "1.2.3.4"),
            (vec![("forwarded", "for=unknown")], "10.0.0.5"),
            (vec![], "10.0.0.5"),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                r.resolve(ip("10.0.0.5"), &headers(&pairs)),
                ip(expected),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn only_the_configured_header_is_read_when_a_request_carries_both() {
        // The proxy writes one header and passes the other through as the client sent it.
        let both = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=203.0.113.66"),
        ]);
        let peer = ip("10.0.0.5");
        assert_eq!(proxies().resolve(peer, &both), ip("198.51.100.1"));
        assert_eq!(
            proxies_writing(ForwardedHeader::Forwarded).resolve(peer, &both),
            ip("203.0.113.66")
        );
        // A client-supplied header the proxy does not write is never believed.
        let only_forwarded = headers(&[("forwarded", "for=203.0.113.66")]);
        assert_eq!(proxies().resolve(peer, &only_forwarded), peer);
        let only_xff = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(
            proxies_writing(ForwardedHeader::Forwarded).resolve(peer, &only_xff),
            peer
        );
    }
}
