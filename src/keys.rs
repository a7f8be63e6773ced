//! API keys: generation from the operating system's CSPRNG, and the one place that turns a key
//! into the digest we keep.
//!
//! A generated key is 256 bits from the OS generator (`getrandom`, through `rand::rngs::SysRng`),
//! written in URL-safe Base64 without padding: 43 characters of `[A-Za-z0-9_-]`, which is valid
//! as an RFC 6750 bearer token and needs no quoting in a shell or a header. The same generator
//! makes session ids.

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

/// A new API key: 256 bits of entropy.
pub fn generate_key() -> Result<String, RandomUnavailable> {
    random_token(32)
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
    fn generated_keys_are_43_url_safe_chars_and_differ() {
        let a = generate_key().expect("rng");
        let b = generate_key().expect("rng");
        assert_eq!(a.len(), 43);
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
