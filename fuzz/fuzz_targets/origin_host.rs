//! `Origin` and `Host`: never a panic; normalising an origin twice changes nothing, and a
//! request the policy lets through carries an allowed Host.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::security::origin::{self, HostRule, OriginPolicy};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(n) = origin::normalise_origin(&text) {
        assert_eq!(origin::normalise_origin(&n).as_deref(), Some(n.as_str()));
    }
    let map = common::headers(data);
    let loopback = OriginPolicy::new(
        Vec::new(),
        HostRule::List(origin::LOOPBACK_HOSTS.map(String::from).to_vec()),
        true,
    );
    let listed = OriginPolicy::new(
        vec!["https://app.example.com".into()],
        HostRule::List(vec!["mcp.example.com".into()]),
        false,
    );
    let _ = loopback.check(&map);
    if listed.check(&map).is_ok() {
        let host = map
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        assert!(
            host.trim()
                .to_ascii_lowercase()
                .starts_with("mcp.example.com"),
            "{host:?}"
        );
    }
});
