//! OAuth 2.1 access tokens from the operator's identity providers: the resource-server side
//! of MCP's authorization spec (`../shared/OAUTH.md` has the requirements and how two
//! gateways do it).
//!
//! [`TokenVerifier::verify`] accepts a JWT access token only if all of these hold:
//! - its `iss` is exactly one of the configured issuers (the unverified `iss` only chooses
//!   whose keys to try; the verified token must carry the same);
//! - its header names a `kid` of that issuer's JWKS ([`jwks`]) and an algorithm that key may
//!   verify ([`keys`]: bound to the key's type; no `none`, no HMAC);
//! - the signature verifies (`jsonwebtoken`, on the aws-lc backend that rustls already uses);
//! - `exp` is present and not past, `nbf` (if present) is not ahead, both with [`LEEWAY`];
//! - `aud` contains this server's resource URI (RFC 8707);
//! - `sub` is present; `typ`, where present, says an access token (`at+jwt`,
//!   `application/at+jwt`) or a plain `JWT`, and the claims are not an ID token's (`nonce`).
//!
//! The token itself is never logged, stored or returned; errors say what to fix in words
//! ([`TokenError`]) without echoing any of it.

pub mod fetch;
pub mod introspect;
pub mod jwks;
pub mod keys;
pub mod resource;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::Validation;
use reqwest::Url;
use serde::Deserialize;
use tokio::time::Instant;

pub use fetch::{FetchError, Fetcher};
pub use jwks::{IssuerKeys, JwksSource, KeyMiss};
pub use resource::ResourceServer;

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: u64 = 30;

/// Why a token was refused: each says what to fix, none repeats the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's issuer is not one this server accepts")]
    UnknownIssuer,
    #[error("the token names no signing key (kid) of its issuer")]
    UnknownKey,
    #[error("the token's issuer cannot be reached for its keys; try again later")]
    IssuerUnavailable,
    #[error("the token's algorithm is not allowed for its key")]
    AlgorithmNotAllowed,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not meant for this server (audience)")]
    WrongAudience,
    #[error("the token is not an access token")]
    NotAnAccessToken,
    #[error("the token lacks a required claim (exp, sub, aud or iss)")]
    MissingClaim,
    #[error("the token is not active (revoked, expired or unknown to its issuer)")]
    Inactive,
}

/// What a verified token says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub issuer: String,
    pub subject: String,
    /// The scopes it grants (`scope`, space-separated, or `scp`).
    pub scopes: Vec<String>,
    /// Seconds since the epoch.
    pub expires: u64,
}

#[derive(Deserialize)]
struct Claims {
    // Optional here so that a missing one is reported as missing, not as malformed.
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<ScopeList>,
    #[serde(default)]
    nonce: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeList {
    List(Vec<String>),
    Text(String),
}

/// How long a verified token is remembered (at most: never past its `exp`).
pub const REMEMBER: Duration = Duration::from_secs(60);
/// How long an introspected token is remembered (shorter: it may be revoked at the issuer).
pub const REMEMBER_INTROSPECTED: Duration = Duration::from_secs(30);
/// The most tokens remembered at once.
pub const REMEMBERED: usize = 10_000;

/// The token checks of the module doc, for the configured issuers and audience.
///
/// A signature check costs about 800k instructions (ES256; BENCHMARKS.md), twenty requests'
/// worth, so a verified token is remembered by its SHA-256 for [`REMEMBER`] (never past its
/// `exp`): a client's next requests with the same token cost a hash and a lookup. Only the
/// exact token hits; the table holds digests, not tokens, and at most [`REMEMBERED`] of them
/// (full, it drops what expired, then everything). The price: a token whose signing key the
/// issuer withdraws is accepted for up to a minute more.
#[derive(Debug)]
pub struct TokenVerifier {
    issuers: HashMap<String, Arc<IssuerKeys>>,
    audience: String,
    remembered: Mutex<HashMap<[u8; 32], (VerifiedToken, Instant)>>,
    /// Opaque tokens' checks (`--oauth-introspection-url`), if configured.
    introspector: Option<introspect::Introspector>,
    /// Full checks made (signature included), for tests and the figures.
    checks: std::sync::atomic::AtomicU64,
}

impl TokenVerifier {
    /// A verifier for tokens of `issuers` (each with where its keys are) meant for `audience`.
    pub fn new(issuers: Vec<(Url, JwksSource)>, audience: String, fetcher: &Fetcher) -> Self {
        let issuers = issuers
            .into_iter()
            .map(|(url, source)| {
                let name = url.as_str().trim_end_matches('/').to_owned();
                let keys = Arc::new(IssuerKeys::new(url, source, fetcher.clone()));
                (name, keys)
            })
            .collect();
        Self {
            issuers,
            audience,
            remembered: Mutex::default(),
            introspector: None,
            checks: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Opaque tokens are checked with `introspector` too.
    pub fn with_introspection(mut self, introspector: introspect::Introspector) -> Self {
        self.introspector = Some(introspector);
        self
    }

    /// Whether `token` is worth checking: a JWT's shape, or anything in the Bearer syntax
    /// when opaque tokens are introspected.
    pub fn accepts(&self, token: &str) -> bool {
        looks_like_jwt(token) || self.introspector.is_some()
    }

    /// Full checks made so far (a remembered token costs none).
    pub fn checks(&self) -> u64 {
        self.checks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tokens remembered now.
    pub fn remembered(&self) -> usize {
        self.remembered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn recall(&self, digest: &[u8; 32], now: Instant) -> Option<VerifiedToken> {
        let table = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        table
            .get(digest)
            .filter(|(_, until)| *until > now)
            .map(|(token, _)| token.clone())
    }

    fn remember(&self, digest: [u8; 32], token: &VerifiedToken, now: Instant, most: Duration) {
        let left = token
            .expires
            .saturating_sub(jsonwebtoken::get_current_timestamp());
        let until = now + most.min(Duration::from_secs(left));
        let mut table = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= REMEMBERED {
            table.retain(|_, (_, until)| *until > now);
            if table.len() >= REMEMBERED {
                table.clear();
            }
        }
        table.insert(digest, (token.clone(), until));
    }

    /// The keys of `issuer`, if it is configured.
    pub fn issuer(&self, issuer: &str) -> Option<&Arc<IssuerKeys>> {
        self.issuers.get(issuer.trim_end_matches('/'))
    }

    /// Verifies `token` (see the module doc), or recalls that it was verified.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(known) = self.recall(&digest, now) {
            return Ok(known);
        }
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (verified, most) = match &self.introspector {
            Some(introspector) if !looks_like_jwt(token) => {
                let known = |iss: &str| self.issuers.contains_key(iss.trim_end_matches('/'));
                let verified = introspector.check(token, known, &self.audience).await?;
                (verified, REMEMBER_INTROSPECTED)
            }
            _ => (self.check(token).await?, REMEMBER),
        };
        self.remember(digest, &verified, now, most);
        Ok(verified)
    }

    async fn check(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if let Some(typ) = &header.typ {
            let typ = typ.to_ascii_lowercase();
            if !matches!(typ.as_str(), "at+jwt" | "application/at+jwt" | "jwt") {
                return Err(TokenError::NotAnAccessToken);
            }
        }
        let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        // Only to choose whose keys to try: the verified claims must say the same.
        #[derive(Deserialize)]
        struct Unverified {
            iss: Option<String>,
        }
        let claimed: Unverified = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| TokenError::Malformed)?;
        let claimed_issuer = claimed.iss.ok_or(TokenError::MissingClaim)?;
        let (issuer, keys) = self
            .issuers
            .get_key_value(claimed_issuer.trim_end_matches('/'))
            .ok_or(TokenError::UnknownIssuer)?;
        let key = keys.key(kid).await.map_err(|miss| match miss {
            KeyMiss::Unknown => TokenError::UnknownKey,
            KeyMiss::Unavailable => TokenError::IssuerUnavailable,
        })?;
        if !key.algorithms.contains(&header.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[issuer.as_str(), &format!("{issuer}/")]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| refusal(e.kind()))?;
        let claims = data.claims;
        if claims.nonce.is_some() {
            return Err(TokenError::NotAnAccessToken);
        }
        let scopes = match (claims.scope, claims.scp) {
            (Some(text), _) | (None, Some(ScopeList::Text(text))) => {
                text.split_whitespace().map(str::to_owned).collect()
            }
            (None, Some(ScopeList::List(list))) => list,
            (None, None) => Vec::new(),
        };
        let (Some(issuer), Some(subject), Some(expires)) = (claims.iss, claims.sub, claims.exp)
        else {
            return Err(TokenError::MissingClaim);
        };
        // The subject is shown in logs and the audit: nothing that could break a line.
        if subject.is_empty() || subject.chars().any(char::is_control) {
            return Err(TokenError::Malformed);
        }
        Ok(VerifiedToken {
            issuer,
            subject,
            scopes,
            expires,
        })
    }
}

/// Whether `token` has a JWT's shape (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The refusal for a `jsonwebtoken` error.
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::InvalidSignature => TokenError::BadSignature,
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::NotYetValid,
        K::InvalidAudience => TokenError::WrongAudience,
        K::InvalidIssuer => TokenError::UnknownIssuer,
        K::MissingRequiredClaim(_) => TokenError::MissingClaim,
        K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName => {
            TokenError::AlgorithmNotAllowed
        }
        _ => TokenError::Malformed,
    }
}
