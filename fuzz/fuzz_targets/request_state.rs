//! Opening a `requestState`: never a panic, nothing made up opens, and what was sealed opens
//! only for its target and caller.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::mcp::request_state::StateSealer;
use secure_mcp_server::security::principal::{KeyId, Principal};

fn sealer() -> &'static StateSealer {
    static S: OnceLock<StateSealer> = OnceLock::new();
    S.get_or_init(|| StateSealer::random().expect("rng"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let alice = Principal::from(KeyId::new("alice"));
    assert!(
        sealer().open(&text, "tools/call t", &alice).is_err(),
        "forged state opened"
    );
    let sealed = sealer().seal("tools/call t", &alice, &text);
    assert_eq!(
        sealer().open(&sealed, "tools/call t", &alice).as_deref(),
        Ok(&*text)
    );
    assert!(sealer().open(&sealed, "tools/call u", &alice).is_err());
    assert!(
        sealer()
            .open(&sealed, "tools/call t", &Principal::from(KeyId::new("bob")))
            .is_err()
    );
});
