//! The keys file: never a panic, never the file's content in an error, and every key it
//! accepts reads back the same from its canonical line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::keys::parse_keys_file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_keys_file(text) {
        Ok(keys) => {
            let canonical: String = keys
                .iter()
                .map(|(id, d)| {
                    format!(
                        "{id}:{}\n",
                        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    )
                })
                .collect();
            assert_eq!(
                parse_keys_file(&canonical).expect("canonical form parses"),
                keys
            );
        }
        Err(e) => {
            // the message is one of the fixed texts (with a line number), never file content
            let shape: String = e
                .to_string()
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
            assert!(
                [
                    "keys file line : expected 'id:shahex' (an id of letters, digits, '-', '_', '.', then  hex digits)",
                    "keys file line : the id is used twice",
                ]
                .contains(&shape.as_str()),
                "{shape}"
            );
        }
    }
});
