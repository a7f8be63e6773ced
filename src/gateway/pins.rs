//! Tool-definition pinning (the rug-pull defence): a digest of each upstream tool's name,
//! description, input schema and annotations, recorded at first sight or loaded from a pin file
//! (`gateway pin` writes one). A tool whose definition no longer matches its pin is withheld
//! from `tools/list` and refused, and a security event says so; the operator approves the
//! change by pinning again.
//!
//! The digest ([`crate::tools::digest`]) is SHA-256 over the definition's JSON with object keys
//! sorted at every level, so an upstream that merely reorders keys does not trip it. Our own
//! tools carry the same digest in `_meta` ([`DIGEST_META`]), so a client can pin them too.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

pub use crate::tools::digest::{DIGEST_META, digest};

/// Tool name → pinned digest.
pub type Pins = BTreeMap<String, String>;

/// Why a pin file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PinFileError {
    #[error("the pin file cannot be read: {0}")]
    Read(std::io::Error),
    #[error("the pin file is not a pin file (an object of tool name to sha256 digest)")]
    Format,
    #[error("the pin file cannot be written: {0}")]
    Write(std::io::Error),
}

/// Reads a pin file: `{"tools": {"<name>": "sha256:<hex>", ...}}`.
pub fn read(path: &Path) -> Result<Pins, PinFileError> {
    let text = std::fs::read_to_string(path).map_err(PinFileError::Read)?;
    let value: Value = serde_json::from_str(&text).map_err(|_| PinFileError::Format)?;
    let tools = value["tools"].as_object().ok_or(PinFileError::Format)?;
    tools
        .iter()
        .map(|(name, digest)| match digest.as_str() {
            Some(d) if d.starts_with("sha256:") => Ok((name.clone(), d.to_owned())),
            _ => Err(PinFileError::Format),
        })
        .collect()
}

/// Writes a pin file.
pub fn write(path: &Path, pins: &Pins) -> Result<(), PinFileError> {
    let text = serde_json::to_string_pretty(&json!({ "tools": pins }))
        .map_err(|_| PinFileError::Format)?;
    std::fs::write(path, text + "\n").map_err(PinFileError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_file_round_trips_and_a_broken_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pins.json");
        let tools = [json!({"name":"a","description":"x"}), json!({"name":"b"})];
        let pins: Pins = tools
            .iter()
            .map(|t| (t["name"].as_str().expect("name").to_owned(), digest(t)))
            .collect();
        write(&path, &pins).expect("write");
        assert_eq!(read(&path).expect("read"), pins);
        std::fs::write(&path, r#"{"tools":{"a":"md5:00"}}"#).expect("write");
        assert!(matches!(read(&path), Err(PinFileError::Format)));
    }
}
