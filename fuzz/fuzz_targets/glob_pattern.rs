//! The glob matcher as `search_files` uses it: any pattern, any name, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, name) = text.split_once('\n').unwrap_or((text, "notes.md"));
    if pattern.len() > 256 {
        return;
    }
    if let Ok(p) = glob::Pattern::new(pattern) {
        let _ = p.matches(name);
        if !pattern.contains(['*', '?', '[', ']']) {
            assert_eq!(
                p.matches(name),
                pattern == name,
                "a literal pattern matches itself only"
            );
        }
    }
});
