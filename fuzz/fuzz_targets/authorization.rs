//! `Authorization`: never a panic; a token it returns was in the header and is a bearer token.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::keys::is_bearer_token;
use secure_mcp_server::security::auth::bearer_token;

fuzz_target!(|data: &[u8]| {
    let map = common::values_of("authorization", data);
    if let Ok(token) = bearer_token(&map) {
        assert!(is_bearer_token(token));
        let raw = map.get("authorization").expect("one value").as_bytes();
        assert!(raw.windows(token.len()).any(|w| w == token.as_bytes()));
    }
});
