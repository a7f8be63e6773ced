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

use std::fmt;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::error::Rejection;
use crate::keys;
use crate::policy::RequestPolicy;

/// The public name of a key: what logs and sessions refer to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(Arc<str>);

impl KeyId {
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Proof that the request carried a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub key_id: KeyId,
}

/// The set of accepted keys, as digests.
pub struct ApiKeys {
    ids: Vec<KeyId>,
    digests: Vec<[u8; 32]>,
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
        let (ids, digests) = keys
            .into_iter()
            .map(|(id, key)| (id, keys::digest(key.as_ref())))
            .unzip();
        Self { ids, digests }
    }

    /// Builds the set from `(id, digest)` pairs (a keys file).
    pub fn from_digests(keys: impl IntoIterator<Item = (KeyId, [u8; 32])>) -> Self {
        let (ids, digests) = keys.into_iter().unzip();
        Self { ids, digests }
    }

    /// Both sets in one, `self` first.
    pub fn merged(&self, other: &ApiKeys) -> Self {
        Self {
            ids: self.ids.iter().chain(&other.ids).cloned().collect(),
            digests: self.digests.iter().chain(&other.digests).copied().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The id of the key `presented` matches, comparing against every key in constant time.
    pub fn verify(&self, presented: &str) -> Option<KeyId> {
        let candidate = keys::digest(presented);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, digest) in self.digests.iter().enumerate() {
            let hit = digest.ct_eq(&candidate);
            index = u64::conditional_select(&index, &(i as u64), hit);
            found |= hit;
        }
        if bool::from(found) {
            usize::try_from(index)
                .ok()
                .and_then(|i| self.ids.get(i))
                .cloned()
        } else {
            None
        }
    }
}

/// The live key set: the keys given on the command line or in the environment, plus those of
/// the keys file, which [`KeyRing::reload`] re-reads (on SIGHUP) without dropping connections.
/// A file that fails to load leaves the previous keys in place.
pub struct KeyRing {
    fixed: ApiKeys,
    file: Option<std::path::PathBuf>,
    current: arc_swap::ArcSwap<ApiKeys>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRing({:?})", self.current.load())
    }
}

impl KeyRing {
    /// `fixed` keys plus, if given, the keys file (read now).
    pub fn new(
        fixed: ApiKeys,
        file: Option<std::path::PathBuf>,
    ) -> Result<Self, keys::KeysFileError> {
        let ring = Self {
            fixed,
            file,
            current: arc_swap::ArcSwap::from_pointee(ApiKeys::from_digests([])),
        };
        ring.reload()?;
        Ok(ring)
    }

    /// Re-reads the keys file; returns the number of keys now accepted.
    pub fn reload(&self) -> Result<usize, keys::KeysFileError> {
        let from_file = match &self.file {
            None => ApiKeys::from_digests([]),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| keys::KeysFileError::Unreadable(e.kind().to_string()))?;
                let parsed = keys::parse_keys_file(&text)?;
                ApiKeys::from_digests(parsed.into_iter().map(|(id, d)| (KeyId::new(id), d)))
            }
        };
        let merged = self.fixed.merged(&from_file);
        let n = merged.len();
        self.current.store(Arc::new(merged));
        Ok(n)
    }

    pub fn verify(&self, presented: &str) -> Option<KeyId> {
        self.current.load().verify(presented)
    }

    pub fn len(&self) -> usize {
        self.current.load().len()
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

/// Policy: a request without a valid key ends here with 401; one with a valid key carries
/// [`Authenticated`] (the handlers read it from the request, the audit from the response).
#[derive(Debug, Clone)]
pub struct RequireKey(pub Arc<KeyRing>);

impl RequestPolicy for RequireKey {
    type Carry = Authenticated;

    fn before(&self, request: &mut Request) -> Result<Authenticated, Rejection> {
        let key_id = bearer_token(request.headers())
            .and_then(|token| self.0.verify(token).ok_or(Rejection::InvalidCredentials))?;
        let authenticated = Authenticated { key_id };
        request.extensions_mut().insert(authenticated.clone());
        Ok(authenticated)
    }

    fn after(authenticated: Authenticated, response: &mut Response) {
        response.extensions_mut().insert(authenticated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn keys() -> ApiKeys {
        ApiKeys::from_plain([
            (KeyId::new("one"), "first-key-value"),
            (KeyId::new("two"), "second-key-value"),
            (KeyId::new("three"), "third-key-value"),
        ])
    }

    #[test]
    fn verify_finds_each_key_and_only_exact_matches() {
        let keys = keys();
        assert_eq!(keys.verify("first-key-value"), Some(KeyId::new("one")));
        assert_eq!(keys.verify("second-key-value"), Some(KeyId::new("two")));
        assert_eq!(keys.verify("third-key-value"), Some(KeyId::new("three")));
        for wrong in [
            "",
            "first-key-valu",
            "first-key-value ",
            "FIRST-KEY-VALUE",
            "x",
        ] {
            assert_eq!(keys.verify(wrong), None, "{wrong:?}");
        }
        assert_eq!(
            ApiKeys::from_plain(Vec::<(KeyId, &str)>::new()).verify("x"),
            None
        );
    }

    #[test]
    fn debug_never_prints_keys() {
        let printed = format!("{:?}", keys());
        assert_eq!(printed, "ApiKeys(3 keys)");
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                header::AUTHORIZATION,
                HeaderValue::from_str(v).expect("header"),
            );
        }
        h
    }

    #[test]
    fn bearer_token_parsing() {
        assert_eq!(bearer_token(&headers(&["Bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["BEARER  abc"])), Ok("abc"));
        assert_eq!(
            bearer_token(&headers(&[])),
            Err(Rejection::MissingCredentials)
        );
        for bad in [
            "Basic YWJjOmRlZg==",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Token abc",
            "Bearer a b",
        ] {
            assert_eq!(
                bearer_token(&headers(&[bad])),
                Err(Rejection::InvalidCredentials),
                "{bad}"
            );
        }
        assert_eq!(
            bearer_token(&headers(&["Bearer abc", "Bearer abc"])),
            Err(Rejection::InvalidCredentials)
        );
    }
}
