//! Bearer API keys: the only parser of the `Authorization` header, the key set, and the
//! policy that requires a valid key on every `/mcp` request.
//!
//! Threat: anyone who can reach the port. Every request (POST, GET, DELETE) is checked; a
//! session id is never a credential.
//!
//! Decisions:
//! - Keys are kept only as SHA-256 digests. A presented key is hashed once and compared with
//!   **every** stored digest using `subtle`'s constant-time equality, and the match is selected
//!   without branching, so neither the time nor the path taken says which key (if any) matched
//!   or how much of it was right.
//! - Only `Authorization: Bearer <token>` is accepted (the scheme case-insensitively, RFC 7235).
//!   A key in the query string, a cookie or any other header is ignored.
//! - A missing header gets `401` with `WWW-Authenticate: Bearer realm="mcp"`; a wrong scheme or
//!   key also adds `error="invalid_token"` (RFC 6750 section 3.1).
//! - The authenticated key's id, never the key, travels on as an [`Authenticated`] extension of
//!   the request (for the handlers) and of the response (for the audit log).
//! - A key's identity ([`KeyId`]) is its id *and* a tag derived from its digest, so sessions and
//!   `requestState` bound to `alice` are not inherited by a different key that a later keys file
//!   names `alice`. Ids are unique across every source (`--api-key`, the environment, the keys
//!   file, a generated key): a clash is refused at start and at reload.
//! - Every key carries a [`KeyGrant`]: a revocation token and its count of open streams. When a
//!   reload removes a key (or changes its digest), its token fires: its in-flight requests end
//!   with 401, its streams close, and its sessions end.
//! - Reloading the keys file fails **closed**: a file that cannot be read or parsed, or that
//!   names an id another source already uses, leaves no file key in force (the command-line and
//!   environment keys still work) and the error is returned for the log and a metric. A file of
//!   only comments and blank lines means "no keys from the file". An operator who empties or
//!   breaks the file to revoke everyone is therefore never left with the old keys accepted.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, header};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use tokio_util::sync::CancellationToken;

use crate::error::Rejection;
use crate::keys;
use crate::security::key_policy::KeyRules;
pub use crate::security::principal::{KeyId, Principal};

/// What a key holds while it is in force: a token that fires when it is revoked, and its open
/// streams.
#[derive(Debug, Default)]
pub struct KeyGrant {
    revoked: CancellationToken,
    streams: AtomicUsize,
}

impl KeyGrant {
    /// Fires when the key is removed or replaced.
    pub fn revoked(&self) -> &CancellationToken {
        &self.revoked
    }

    /// Takes one of `max` stream slots; `None` when all are in use.
    pub fn open_stream(self: &Arc<Self>, max: usize) -> Option<StreamSlot> {
        self.streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot(self.clone()))
    }

    /// Streams open now.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Acquire)
    }
}

/// One open stream of a key; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamSlot(Arc<KeyGrant>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Proof that the request carried a valid credential: who it names, and the grant it holds
/// while in force.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub grant: Arc<KeyGrant>,
    /// What the caller may do (see [`crate::security::key_policy`]).
    pub rules: Arc<KeyRules>,
    /// When the credential stops being valid (a token's `exp`; a key: never). A stream
    /// opened with it ends then.
    pub expires: Option<tokio::time::Instant>,
}

impl Authenticated {
    /// A proof for `principal` with a grant of its own and no restriction (tests, embedders).
    pub fn new(principal: impl Into<Principal>) -> Self {
        Self {
            principal: principal.into(),
            grant: Arc::default(),
            rules: Arc::new(KeyRules::unrestricted()),
            expires: None,
        }
    }
}

impl PartialEq for Authenticated {
    fn eq(&self, other: &Self) -> bool {
        self.principal == other.principal
    }
}

/// The set of accepted keys, as digests.
#[derive(Clone)]
pub struct ApiKeys {
    ids: Vec<KeyId>,
    digests: Vec<[u8; 32]>,
    grants: Vec<Arc<KeyGrant>>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

impl ApiKeys {
    /// Builds the set from `(id, plaintext key)` pairs; the plaintext is hashed and dropped.
    pub fn from_plain<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = (KeyId, S)>,
        S: AsRef<str>,
    {
        Self::from_digests(
            keys.into_iter()
                .map(|(id, key)| (id, keys::digest(key.as_ref()))),
        )
    }

    /// Builds the set from `(id, digest)` pairs (a keys file).
    pub fn from_digests(keys: impl IntoIterator<Item = (KeyId, [u8; 32])>) -> Self {
        let mut set = Self {
            ids: Vec::new(),
            digests: Vec::new(),
            grants: Vec::new(),
        };
        for (id, digest) in keys {
            set.ids.push(KeyId::for_digest(id.as_str(), &digest));
            set.digests.push(digest);
            set.grants.push(Arc::default());
        }
        set
    }

    /// Both sets in one, `self` first; `Err` names an id that is in both.
    pub fn merged(&self, other: &ApiKeys) -> Result<Self, String> {
        if let Some(clash) = other
            .ids
            .iter()
            .find(|id| self.ids.iter().any(|own| own.as_str() == id.as_str()))
        {
            return Err(clash.as_str().to_owned());
        }
        Ok(Self {
            ids: self.ids.iter().chain(&other.ids).cloned().collect(),
            digests: self.digests.iter().chain(&other.digests).copied().collect(),
            grants: self.grants.iter().chain(&other.grants).cloned().collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    fn grant_of(&self, id: &KeyId) -> Option<&Arc<KeyGrant>> {
        self.ids
            .iter()
            .position(|k| k == id)
            .map(|i| &self.grants[i])
    }

    /// The index of the key `presented` matches, comparing against every key in constant time.
    fn find(&self, presented: &str) -> Option<usize> {
        let candidate = keys::digest(presented);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, digest) in self.digests.iter().enumerate() {
            let hit = digest.ct_eq(&candidate);
            index = u64::conditional_select(&index, &(i as u64), hit);
            found |= hit;
        }
        if bool::from(found) {
            usize::try_from(index).ok()
        } else {
            None
        }
    }

    /// The id of the key `presented` matches, comparing against every key in constant time.
    pub fn verify(&self, presented: &str) -> Option<KeyId> {
        self.find(presented).and_then(|i| self.ids.get(i)).cloned()
    }

    /// Like [`Self::verify`], with the key's grant.
    pub fn authenticate(&self, presented: &str) -> Option<Authenticated> {
        let i = self.find(presented)?;
        Some(Authenticated {
            principal: Principal::ApiKey(self.ids.get(i)?.clone()),
            grant: self.grants.get(i)?.clone(),
            rules: UNRESTRICTED.with(Arc::clone),
            expires: None,
        })
    }
}

thread_local! {
    /// The rules of a key when no policy file is configured, shared (one per thread, so
    /// handing them to a request is a plain reference count).
    static UNRESTRICTED: Arc<KeyRules> = Arc::new(KeyRules::unrestricted());
}

/// Why the keys file was not taken; every file key is refused until a reload succeeds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    File(#[from] keys::KeysFileError),
    #[error("the keys file uses an id that another key source already uses")]
    IdClash(String),
}

/// The live key set: the keys given on the command line or in the environment, plus those of
/// the keys file, which [`KeyRing::reload`] re-reads (on SIGHUP) without dropping connections.
/// A file that fails to load leaves no file key in force (fail closed).
pub struct KeyRing {
    fixed: ApiKeys,
    file: Option<std::path::PathBuf>,
    current: arc_swap::ArcSwap<ApiKeys>,
    /// Serialises reloads (a storm of SIGHUPs), so grants are carried over consistently.
    reloading: std::sync::Mutex<()>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRing({:?})", self.current.load())
    }
}

impl KeyRing {
    /// `fixed` keys plus, if given, the keys file (read now; at start any error is fatal).
    pub fn new(fixed: ApiKeys, file: Option<std::path::PathBuf>) -> Result<Self, ReloadError> {
        let ring = Self {
            fixed,
            file,
            current: arc_swap::ArcSwap::from_pointee(ApiKeys::from_digests([])),
            reloading: std::sync::Mutex::new(()),
        };
        ring.reload()?;
        Ok(ring)
    }

    /// The file's keys merged with the fixed ones.
    fn load(&self) -> Result<ApiKeys, ReloadError> {
        let from_file = match &self.file {
            None => ApiKeys::from_digests([]),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| keys::KeysFileError::Unreadable(e.kind().to_string()))?;
                let parsed = keys::parse_keys_file(&text)?;
                ApiKeys::from_digests(parsed.into_iter().map(|(id, d)| (KeyId::new(id), d)))
            }
        };
        self.fixed.merged(&from_file).map_err(ReloadError::IdClash)
    }

    /// Re-reads the keys file; returns the number of keys now accepted. On an error, only the
    /// fixed keys stay in force. Keys that are gone have their grant revoked.
    pub fn reload(&self) -> Result<usize, ReloadError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let (mut next, outcome) = match self.load() {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (self.fixed.clone(), Err(e)),
        };
        let previous = self.current.load_full();
        // A key that stays keeps its grant (its streams and revocation token).
        for (i, id) in next.ids.iter().enumerate() {
            if let Some(grant) = previous.grant_of(id) {
                next.grants[i] = grant.clone();
            }
        }
        let n = next.len();
        self.current.store(Arc::new(next));
        let current = self.current.load();
        for (id, grant) in previous.ids.iter().zip(&previous.grants) {
            if current.grant_of(id).is_none() {
                grant.revoked.cancel();
            }
        }
        outcome.map(|()| n)
    }

    pub fn verify(&self, presented: &str) -> Option<KeyId> {
        self.current.load().verify(presented)
    }

    /// The key `presented` matches, with its grant.
    pub fn authenticate(&self, presented: &str) -> Option<Authenticated> {
        self.current.load().authenticate(presented)
    }

    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    /// Whether a key with the id `name` is in force (a policy file may name only these).
    pub fn knows(&self, name: &str) -> bool {
        self.current.load().ids.iter().any(|id| id.as_str() == name)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The bearer token of a request, or why there is none.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(Rejection::MissingCredentials)?;
    if values.next().is_some() {
        return Err(Rejection::InvalidCredentials);
    }
    let value = value.to_str().map_err(|_| Rejection::InvalidCredentials)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::InvalidCredentials)?;
    let token = token.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || !keys::is_bearer_token(token) {
        return Err(Rejection::InvalidCredentials);
    }
    Ok(token)
}

mod layer;
pub use layer::RequireCredential;

#[cfg(test)]
mod tests;
