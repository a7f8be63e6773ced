//! `Accept`, `Content-Type` and `Last-Event-ID`: never a panic; a request refused as not
//! acceptable named neither JSON nor SSE.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::mcp::transport::negotiate::{self, Accept, Framing};

fuzz_target!(|data: &[u8]| {
    let map = common::headers(data);
    let accept = Accept::parse(&map);
    let framing = accept.framing();
    let sse = accept.sse;
    if framing.is_err() {
        // refused: no range asked plainly for JSON or anything
        let plain = map.get_all("accept").iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',').any(|r| {
                    let r = r.trim().to_ascii_lowercase();
                    r == "application/json" || r == "*/*"
                })
            })
        });
        assert!(!plain, "a plain JSON or */* range was refused");
    }
    if matches!(framing, Ok(Framing::Sse)) {
        assert!(sse, "an SSE-only client accepts SSE");
    }
    let _ = negotiate::is_json_content_type(&map);
    let _ = negotiate::last_event_id(&map);
});
