//! The `file://` resource URI parser: never a panic; a virtual path survives the round trip
//! through its URI, and no URI decodes to a path with a NUL the sandbox would not refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::files::uri::{file_uri, virtual_path_of};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = virtual_path_of(text);
    let uri = file_uri(text);
    assert_eq!(virtual_path_of(&uri).as_deref(), Some(text), "{uri}");
    assert!(!uri.contains(['?', '#', ' ']), "{uri}");
});
