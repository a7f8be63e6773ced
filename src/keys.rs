//! API keys: generation from the operating system's CSPRNG, and the one place that turns a key
//! into the digest we keep.
//!
//! A generated key is [`KEY_PREFIX`] followed by 256 bits from the OS generator (`getrandom`,
//! through `rand::rngs::SysRng`) in URL-safe Base64 without padding: 48 characters of
//! `[A-Za-z0-9_-]`, valid as an RFC 6750 bearer token and needing no quoting in a shell or a
//! header. The prefix lets secret scanners recognise a leaked key and keeps a key from starting
//! with `-` (which a command line would take for a flag). The same generator makes session ids.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};

/// The OS random source failed; nothing secure can be generated.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator is unavailable")]
pub struct RandomUnavailable;

/// `n` random bytes from the OS CSPRNG, URL-safe Base64 without padding.
pub fn random_token(n: usize) -> Result<String, RandomUnavailable> {
    let mut bytes = vec![0u8; n];
    SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| RandomUnavailable)?;
    Ok(URL_SAFE_NO_PAD.encode(&bytes))
}

/// What every generated key starts with.
pub const KEY_PREFIX: &str = "smcp_";

/// A new API key: [`KEY_PREFIX`] and 256 bits of entropy.
pub fn generate_key() -> Result<String, RandomUnavailable> {
    Ok(format!("{KEY_PREFIX}{}", random_token(32)?))
}

/// The SHA-256 digest under which a key is stored and compared.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether `s` can travel as an RFC 6750 bearer token (`b64token`).
pub fn is_bearer_token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_prefixed_url_safe_256_bit_tokens_and_differ() {
        let a = generate_key().expect("rng");
        let b = generate_key().expect("rng");
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
        assert!(is_bearer_token(&a));
    }

    #[test]
    fn bearer_token_syntax() {
        for ok in ["abc", "a-b.c_d~e+f/g", "abc==", "Zm9v"] {
            assert!(is_bearer_token(ok), "{ok}");
        }
        for bad in ["", "==", "a b", "a,b", "a\"b", "ключ", "a\nb", "=abc"] {
            assert!(!is_bearer_token(bad), "{bad:?}");
        }
    }
}

/// The least estimated entropy a plaintext key must have.
pub const MIN_KEY_BITS: f64 = 128.0;

/// A conservative estimate of a key's entropy in bits: the smaller of
/// - its length times log2 of the character pool it draws from (lowercase, uppercase, digits,
///   symbols), which bounds what any key of that length and alphabet can hold, and
/// - its length times the Shannon entropy of its own character frequencies, which catches
///   repetition (`aaaa…`, `abcabc…`).
///
/// A generated key scores about 200; a 20-character password about 100.
pub fn estimated_bits(key: &str) -> f64 {
    let len = key.chars().count() as f64;
    if len == 0.0 {
        return 0.0;
    }
    let mut pool = 0u32;
    if key.chars().any(|c| c.is_ascii_lowercase()) {
        pool += 26;
    }
    if key.chars().any(|c| c.is_ascii_uppercase()) {
        pool += 26;
    }
    if key.chars().any(|c| c.is_ascii_digit()) {
        pool += 10;
    }
    if key.chars().any(|c| !c.is_ascii_alphanumeric()) {
        pool += 32;
    }
    let pool_bits = len * f64::from(pool.max(1)).log2();
    let mut counts = std::collections::HashMap::new();
    for c in key.chars() {
        *counts.entry(c).or_insert(0u32) += 1;
    }
    let shannon: f64 = counts
        .values()
        .map(|&n| {
            let p = f64::from(n) / len;
            -p * p.log2()
        })
        .sum();
    pool_bits.min(len * shannon)
}

/// A line of a keys file: `id:sha256hex`.
pub fn keys_file_line(id: &str, key: &str) -> String {
    format!("{id}:{}", hex::encode(digest(key)))
}

/// What `--generate-key` prints: a new key on the first line (so `| head -n 1` takes it), then
/// the line to put in a keys file for it, under a random id.
pub fn generated_key_text() -> Result<String, RandomUnavailable> {
    let key = generate_key()?;
    let id = random_token(6)?;
    Ok(format!(
        "{key}\n# for --keys-file (stores the digest, not the key):\n{}\n",
        keys_file_line(&format!("key-{id}"), &key)
    ))
}

/// Why a keys file was refused; the line number, never the line's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysFileError {
    #[error("cannot read the keys file ({0})")]
    Unreadable(String),
    #[error(
        "keys file line {0}: expected 'id:sha256hex' (an id of letters, digits, '-', '_', '.', then 64 hex digits)"
    )]
    Syntax(usize),
    #[error("keys file line {0}: the id is used twice")]
    DuplicateId(usize),
}

/// Parses a keys file: one `id:sha256hex` per line; blank lines and `#` comments are skipped.
/// A file of only comments and blank lines holds no key (an operator revoking every file key).
pub fn parse_keys_file(text: &str) -> Result<Vec<(String, [u8; 32])>, KeysFileError> {
    let mut out: Vec<(String, [u8; 32])> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, hex_digest) = line.split_once(':').ok_or(KeysFileError::Syntax(n))?;
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let mut digest = [0u8; 32];
        if !id_ok || hex::decode_to_slice(hex_digest.trim(), &mut digest).is_err() {
            return Err(KeysFileError::Syntax(n));
        }
        if out.iter().any(|(existing, _)| existing == id) {
            return Err(KeysFileError::DuplicateId(n));
        }
        out.push((id.to_owned(), digest));
    }
    Ok(out)
}

#[cfg(test)]
mod entropy_tests {
    use super::*;

    #[test]
    fn weak_keys_score_below_128_bits_and_generated_keys_above() {
        for weak in [
            "",
            "password",
            "testkey123",
            "correct-horse-battery",
            &"a".repeat(64),
            &"ab".repeat(40),
        ] {
            assert!(
                estimated_bits(weak) < MIN_KEY_BITS,
                "{weak}: {}",
                estimated_bits(weak)
            );
        }
        for _ in 0..50 {
            let k = generate_key().expect("rng");
            assert!(
                estimated_bits(&k) >= MIN_KEY_BITS,
                "{k}: {}",
                estimated_bits(&k)
            );
        }
        assert!(estimated_bits("test-key-alpha-0123456789abcdef") >= MIN_KEY_BITS);
    }

    #[test]
    fn keys_files_hold_digests_with_ids() {
        let line = keys_file_line("ci", "some-key");
        let text = format!("# team keys\n\n{line}\nops.2:{}\n", "ab".repeat(32));
        let parsed = parse_keys_file(&text).expect("parse");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0], ("ci".to_owned(), digest("some-key")));
        assert_eq!(parse_keys_file("x:12"), Err(KeysFileError::Syntax(1)));
        assert_eq!(
            parse_keys_file(&format!("# c\nbad id:{}", "0".repeat(64))),
            Err(KeysFileError::Syntax(2))
        );
        assert_eq!(
            parse_keys_file(&format!("a:{0}\na:{0}", "0".repeat(64))),
            Err(KeysFileError::DuplicateId(2))
        );
        assert_eq!(parse_keys_file("# nothing\n\n   \n"), Ok(Vec::new()));
        let secret = "plaintext-key-that-must-not-be-echoed";
        let e = parse_keys_file(secret)
            .expect_err("plaintext is not a digest")
            .to_string();
        assert!(!e.contains(secret));
    }
}
