//! [`Principal`]: who is calling. Sessions, sealed request state, per-caller limits and the
//! audit name the caller through it, never through a credential's own type, so a second kind
//! of credential (an OAuth token's subject) is one more variant here, not a change in each of
//! them.
//!
//! Today the one kind is an API key, named by its [`KeyId`]: the public id the operator gave
//! it (what logs show) and a tag derived from its digest. What a caller is bound to (a
//! session, sealed state) is the id *and* the tag, so a key replaced under the same id does
//! not inherit the old key's sessions.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A caller with an API key.
    ApiKey(KeyId),
    /// A caller with an access token from an identity provider: its issuer and subject.
    Token(TokenSubject),
}

impl Principal {
    /// The name logs and the audit show (a key's id); never a secret.
    pub fn name(&self) -> &str {
        match self {
            Self::ApiKey(id) => id.as_str(),
            Self::Token(subject) => &subject.name,
        }
    }

    /// What sessions, sealed state and per-key budgets are bound to: the same for the same
    /// credential, different for another credential under the same name. Made once, when the
    /// credential is loaded.
    pub fn binding(&self) -> &str {
        match self {
            Self::ApiKey(id) => &id.binding,
            Self::Token(subject) => &subject.binding,
        }
    }
}

impl From<TokenSubject> for Principal {
    fn from(subject: TokenSubject) -> Self {
        Self::Token(subject)
    }
}

impl From<KeyId> for Principal {
    fn from(id: KeyId) -> Self {
        Self::ApiKey(id)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a key's binding begins (another kind of principal would have its own).
const BINDING_PREFIX: &str = "key:";

/// The identity of a token's caller: its issuer and subject, never the token. Shown (logs,
/// audit, the policy file's `[subjects."<issuer>|<subject>"]`) as `<issuer>|<subject>`;
/// bound as `token:` and a digest of both, so no subject can pose as an API key's id or as
/// another issuer's subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenSubject {
    name: Arc<str>,
    binding: Arc<str>,
}

impl TokenSubject {
    pub fn new(issuer: &str, subject: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"secure-mcp-server token subject\0");
        h.update((issuer.len() as u64).to_be_bytes());
        h.update(issuer.as_bytes());
        h.update(subject.as_bytes());
        let digest = h.finalize();
        Self {
            name: format!("{issuer}|{subject}").into(),
            binding: format!("token:{}", hex::encode(&digest[..16])).into(),
        }
    }
}

/// The identity of a key: its public id (what logs show) and a tag derived from its digest
/// (what sessions and sealed state are bound to, with the id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId {
    name: Arc<str>,
    tag: u64,
    /// `key:<name>#<tag>`, the principal's binding.
    binding: Arc<str>,
}

impl KeyId {
    /// An id without a digest (keys not yet hashed, tests, detached tool contexts).
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self::with_tag(id.into(), 0)
    }

    fn with_tag(name: Arc<str>, tag: u64) -> Self {
        let binding = format!("{BINDING_PREFIX}{name}#{tag:016x}").into();
        Self { name, tag, binding }
    }

    /// The identity of the key with this id and digest.
    pub fn for_digest(id: impl Into<Arc<str>>, digest: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"secure-mcp-server key identity\0");
        h.update(digest);
        let out = h.finalize();
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&out[..8]);
        Self::with_tag(id.into(), u64::from_be_bytes(tag))
    }

    /// The public id (logs, audit).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Id and tag as one string (`<name>#<tag>`): what the key's binding names.
    pub fn identity(&self) -> &str {
        &self.binding[BINDING_PREFIX.len()..]
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Two callers with the same key id and different keys: a key replaced under its id (tests
/// of everything bound to a caller).
#[cfg(test)]
pub fn replaced_key(id: &str) -> (Principal, Principal) {
    let key = |value: &str| Principal::from(KeyId::for_digest(id, &crate::keys::digest(value)));
    (key("old-key-value"), key("new-key-value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_is_shown_by_name_and_bound_by_name_and_credential() {
        let old = Principal::from(KeyId::for_digest("ops", &[1; 32]));
        let new = Principal::from(KeyId::for_digest("ops", &[2; 32]));
        assert_eq!(old.name(), "ops");
        assert_eq!(old.to_string(), "ops");
        assert_eq!(old.binding(), old.clone().binding());
        assert_ne!(
            old.binding(),
            new.binding(),
            "a replaced key binds differently"
        );
    }

    #[test]
    fn a_token_subject_is_shown_by_issuer_and_subject_and_bound_apart_from_keys() {
        let alice = Principal::from(TokenSubject::new("https://idp.example", "alice"));
        assert_eq!(alice.name(), "https://idp.example|alice");
        assert!(alice.binding().starts_with("token:"));
        // The same subject at another issuer, or a split in another place, is someone else.
        for other in [
            TokenSubject::new("https://other.example", "alice"),
            TokenSubject::new("https://idp.example|al", "ice"),
        ] {
            assert_ne!(Principal::from(other).binding(), alice.binding());
        }
        let key = Principal::from(KeyId::new("https://idp.example|alice"));
        assert_ne!(key.binding(), alice.binding());
    }
}
