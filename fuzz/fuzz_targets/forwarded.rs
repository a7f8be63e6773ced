//! `X-Forwarded-For` and `Forwarded` behind a trusted proxy: never a panic, and the client is
//! the peer or an address the header actually contained.
#![no_main]

#[path = "common.rs"]
mod common;

use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::security::client_ip::{ClientIpResolver, ForwardedHeader};

/// Every address written in `text`, in any of the forms a header may use.
fn written(text: &str, ip: IpAddr) -> bool {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':' || c == '[' || c == ']'))
        .flat_map(|t| {
            let t = t.trim_matches(|c| c == '[' || c == ']');
            let bracketed = t.split(']').next().unwrap_or(t);
            [
                t.parse::<IpAddr>().ok(),
                t.parse::<SocketAddr>().ok().map(|a| a.ip()),
                bracketed.trim_start_matches('[').parse::<IpAddr>().ok(),
                t.rsplit_once(':')
                    .and_then(|(h, _)| h.parse::<IpAddr>().ok()),
            ]
        })
        .flatten()
        .any(|a| a == ip)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (header, name) = if selector & 1 == 0 {
        (ForwardedHeader::XForwardedFor, "x-forwarded-for")
    } else {
        (ForwardedHeader::Forwarded, "forwarded")
    };
    let map = common::values_of(name, rest);
    let resolver = ClientIpResolver::new(
        vec![
            "10.0.0.0/8".parse().expect("net"),
            "::1/128".parse().expect("net"),
        ],
        header,
    );
    let peer: IpAddr = "10.0.0.5".parse().expect("ip");
    let client = resolver.resolve(peer, &map);
    if client != peer {
        let text = String::from_utf8_lossy(rest);
        assert!(written(&text, client), "{client} is not in {text:?}");
    }
    // an untrusted peer is always itself
    let outsider: IpAddr = "203.0.113.9".parse().expect("ip");
    assert_eq!(resolver.resolve(outsider, &map), outsider);
});
