//! Integrity-protected `requestState` for 2026-07-28 input-required results.
//!
//! A tool that needs input from the client returns `resultType: "input_required"` with its own
//! state; the client echoes that state on the retry. The client is not trusted with it: the
//! state is sealed as `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`, where the
//! payload binds the tool's state to the method and name it belongs to, the key id of the
//! caller, and an expiry. The HMAC key is drawn from the OS CSPRNG at start and never leaves
//! the process, so a restart invalidates outstanding states (the client then starts over) —
//! unless `--state-secret-file` names a secret that several instances share
//! ([`read_secret_file`]): then the key is derived from it, and every instance opens every
//! other's states (and a restart keeps them valid).
//! Any tampering, another caller's state, another tool's state, or an expired state is refused
//! with `-32602`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use rand::TryRng;
use serde::{Deserialize, Serialize};

use crate::error::RpcError;
use crate::security::principal::Principal;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How long a client has to answer an input request.
pub const STATE_TTL: Duration = Duration::from_secs(600);

#[derive(Serialize, Deserialize)]
struct Payload {
    /// `method name`, e.g. `tools/call test_tool`.
    target: String,
    kid: String,
    exp: u64,
    state: String,
}

/// Seals and opens request states.
pub struct StateSealer {
    mac: HmacSha256,
}

impl std::fmt::Debug for StateSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSealer")
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl StateSealer {
    /// A sealer with a fresh random key.
    pub fn random() -> Result<Self, crate::keys::RandomUnavailable> {
        let mut key = [0u8; 32];
        rand::rngs::SysRng
            .try_fill_bytes(&mut key)
            .map_err(|_| crate::keys::RandomUnavailable)?;
        let mac = <HmacSha256 as KeyInit>::new_from_slice(&key)
            .map_err(|_| crate::keys::RandomUnavailable)?;
        Ok(Self { mac })
    }

    /// A sealer whose key is derived from a shared secret (domain-separated, so the secret is
    /// not itself the HMAC key).
    pub fn from_secret(secret: &[u8]) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"secure-mcp-server request state\0");
        h.update(secret);
        let key = h.finalize();
        let mac = <HmacSha256 as KeyInit>::new_from_slice(&key)
            .expect("HMAC-SHA256 takes a key of any length");
        Self { mac }
    }

    fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// Seals `state` for `target` and the caller.
    pub fn seal(&self, target: &str, caller: &Principal, state: &str) -> String {
        let payload = Payload {
            target: target.to_owned(),
            kid: caller.binding().to_owned(),
            exp: now_secs() + STATE_TTL.as_secs(),
            state: state.to_owned(),
        };
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&bytes);
        let tag = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&bytes),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Opens a sealed state, checking its MAC, target, caller and expiry.
    pub fn open(&self, sealed: &str, target: &str, caller: &Principal) -> Result<String, RpcError> {
        let invalid = || RpcError::InvalidParams("invalid requestState".into());
        let (payload_b64, tag_b64) = sealed.split_once('.').ok_or_else(invalid)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| invalid())?;
        let mut mac = self.mac();
        mac.update(&bytes);
        mac.verify_slice(&tag).map_err(|_| invalid())?;
        let payload: Payload = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if payload.target != target || payload.kid != caller.binding() || payload.exp < now_secs() {
            return Err(invalid());
        }
        Ok(payload.state)
    }
}

/// Why a shared secret file was refused. Never includes the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("is readable by group or others (chmod 600)")]
    Exposed,
    #[error(
        "holds too little entropy (estimated under 128 bits); use `secure-mcp-server --generate-key`"
    )]
    Weak,
}

/// Reads a shared `requestState` secret: one line, readable by its owner only, at least as
/// strong as an API key.
pub fn read_secret_file(path: &std::path::Path) -> Result<Vec<u8>, SecretFileError> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| SecretFileError::Unreadable(e.kind().to_string()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(SecretFileError::Exposed);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| SecretFileError::Unreadable(e.kind().to_string()))?;
    let secret = text.trim();
    if crate::keys::estimated_bits(secret) < crate::keys::MIN_KEY_BITS {
        return Err(SecretFileError::Weak);
    }
    Ok(secret.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::principal::KeyId;

    #[test]
    fn a_sealed_state_opens_only_unchanged_for_its_target_and_caller() {
        let s = StateSealer::random().expect("rng");
        let alice = Principal::from(KeyId::new("alice"));
        let sealed = s.seal("tools/call t", &alice, "step-1");
        assert_eq!(s.open(&sealed, "tools/call t", &alice), Ok("step-1".into()));
        assert!(
            s.open(&format!("{sealed}-TAMPERED"), "tools/call t", &alice)
                .is_err()
        );
        assert!(s.open(&sealed, "tools/call other", &alice).is_err());
        assert!(
            s.open(
                &sealed,
                "tools/call t",
                &Principal::from(KeyId::new("mallory"))
            )
            .is_err()
        );
        assert!(s.open("garbage", "tools/call t", &alice).is_err());
        let other = StateSealer::random().expect("rng");
        assert!(
            other.open(&sealed, "tools/call t", &alice).is_err(),
            "another process's key"
        );
        // a payload edited to a new state with the old tag fails
        let (_, tag) = sealed.split_once('.').expect("dot");
        let forged_payload = URL_SAFE_NO_PAD.encode(
            br#"{"target":"tools/call t","kid":"alice","exp":99999999999,"state":"admin"}"#,
        );
        assert!(
            s.open(&format!("{forged_payload}.{tag}"), "tools/call t", &alice)
                .is_err()
        );
    }

    #[test]
    fn a_new_key_under_an_old_id_cannot_open_the_old_keys_state() {
        let s = StateSealer::random().expect("rng");
        let (old, new) = crate::security::principal::replaced_key("alice");
        let sealed = s.seal("tools/call t", &old, "step-1");
        assert!(s.open(&sealed, "tools/call t", &old).is_ok());
        assert!(s.open(&sealed, "tools/call t", &new).is_err());
    }

    #[test]
    fn instances_sharing_a_secret_open_each_others_states_and_no_one_else_does() {
        let secret = b"Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGkq";
        let (a, b) = (
            StateSealer::from_secret(secret),
            StateSealer::from_secret(secret),
        );
        let stranger = StateSealer::from_secret(b"another-secret-Hs5dG1aK9eU7oI3rT6yP2x");
        let alice = Principal::from(KeyId::new("alice"));
        let sealed = a.seal("tools/call t", &alice, "step-1");
        assert_eq!(
            b.open(&sealed, "tools/call t", &alice).as_deref(),
            Ok("step-1")
        );
        assert!(stranger.open(&sealed, "tools/call t", &alice).is_err());
        assert!(
            StateSealer::random()
                .expect("rng")
                .open(&sealed, "tools/call t", &alice)
                .is_err()
        );
    }

    #[test]
    fn a_secret_file_must_be_private_and_strong() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        let write = |text: &str, mode: u32| {
            std::fs::write(&path, text).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        let strong = "Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGkq\n";
        write(strong, 0o600);
        assert_eq!(
            read_secret_file(&path).as_deref(),
            Ok(strong.trim().as_bytes())
        );
        write(strong, 0o640);
        assert_eq!(read_secret_file(&path), Err(SecretFileError::Exposed));
        write("hunter2", 0o600);
        assert_eq!(read_secret_file(&path), Err(SecretFileError::Weak));
        assert!(matches!(
            read_secret_file(&dir.path().join("missing")),
            Err(SecretFileError::Unreadable(_))
        ));
    }
}
