//! [`IssuerKeys`]: one issuer's signing keys, fetched and kept.
//!
//! - Kept as long as the JWKS answer's `Cache-Control` says, within a floor and a ceiling
//!   ([`super::fetch::ttl`]). A stale set is refreshed by the next request that needs it; if
//!   the issuer does not answer, the stale keys keep working (a JWKS outage must not lock
//!   everyone out) and the failure is logged.
//! - A token naming a `kid` the set does not have triggers one refresh (the issuer may have
//!   rotated), but at most one such refresh per [`MIN_REFRESH`] per issuer, whatever the
//!   number of bogus `kid`s: a flood of invented `kid`s costs the issuer one request per
//!   interval.
//! - Requests that need a refresh at the same time share it (one fetch).
//! - Before the first successful fetch, every token of the issuer is refused: the server
//!   fails closed, with a clear log line, and retries at the next request (rate-limited the
//!   same way).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use reqwest::Url;
use tokio::time::Instant;

use super::fetch::{FetchError, Fetcher};
use super::keys::{VerifyingKey, verifying_keys};

/// The least time between two refreshes of one issuer's keys forced by unknown `kid`s (or by
/// a failed first fetch).
pub const MIN_REFRESH: Duration = Duration::from_secs(10);

/// A fetched key set.
#[derive(Debug)]
pub struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched: Instant,
    keep: Duration,
}

impl KeySet {
    fn fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.fetched) < self.keep
    }
}

/// Where an issuer's JWKS is.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// Given (`--oauth-jwks-url`).
    Url(Url),
    /// From the issuer's metadata, found at the first fetch.
    Discover,
}

/// Why no key could be had for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMiss {
    /// The issuer's keys are known and this `kid` is not among them.
    Unknown,
    /// The issuer's keys could never be fetched.
    Unavailable,
}

/// Why a refresh is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// The keys are fresh but lack a token's `kid`.
    UnknownKid,
    /// The keys are stale, or there are none yet.
    Due,
}

/// When refreshes were last tried.
#[derive(Debug, Default)]
struct Attempts {
    any: Option<Instant>,
    forced: Option<Instant>,
}

/// One issuer's keys.
#[derive(Debug)]
pub struct IssuerKeys {
    issuer: Url,
    source: tokio::sync::Mutex<JwksSource>,
    fetcher: Fetcher,
    current: ArcSwapOption<KeySet>,
    /// The last refresh attempts, under the lock that serialises them.
    attempts: tokio::sync::Mutex<Attempts>,
    /// Fetches made (for tests and the metrics).
    pub fetches: std::sync::atomic::AtomicU64,
}

impl IssuerKeys {
    pub fn new(issuer: Url, source: JwksSource, fetcher: Fetcher) -> Self {
        Self {
            issuer,
            source: tokio::sync::Mutex::new(source),
            fetcher,
            current: ArcSwapOption::empty(),
            attempts: tokio::sync::Mutex::default(),
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The key `kid` names, refreshing the set if it is stale, missing or lacks the key
    /// (within the limits of the module doc).
    pub async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, KeyMiss> {
        let now = Instant::now();
        let current = self.current.load_full();
        let why = match &current {
            Some(set) if set.fresh(now) => match set.keys.get(kid) {
                Some(key) => return Ok(key.clone()),
                None => Refresh::UnknownKid,
            },
            _ => Refresh::Due,
        };
        self.refresh(current.as_ref().map(|s| s.fetched), why).await;
        match self.current.load_full() {
            Some(set) => set.keys.get(kid).cloned().ok_or(KeyMiss::Unknown),
            None => Err(KeyMiss::Unavailable),
        }
    }

    /// Fetches the set again, unless another request did since `seen`, or the last attempt of
    /// its kind was within [`MIN_REFRESH`]: a refresh for an unknown `kid` counts against the
    /// last such refresh; one that is due (stale keys, or none yet) against the last attempt
    /// of any kind, so an issuer that is down is asked once per interval.
    async fn refresh(&self, seen: Option<Instant>, why: Refresh) {
        let mut attempts = self.attempts.lock().await;
        let now = Instant::now();
        let newer = self.current.load_full().map(|s| s.fetched);
        if newer.is_some() && newer != seen {
            return; // refreshed while this request waited for the lock
        }
        let last = match why {
            Refresh::UnknownKid => attempts.forced,
            Refresh::Due => attempts.any,
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < MIN_REFRESH) {
            return;
        }
        attempts.any = Some(now);
        if why == Refresh::UnknownKid {
            attempts.forced = Some(now);
        }
        match self.fetch().await {
            Ok(set) => {
                tracing::info!(issuer = %self.issuer, keys = set.keys.len(), "issuer keys fetched");
                self.current.store(Some(Arc::new(set)));
            }
            Err(e) if self.current.load().is_some() => {
                tracing::warn!(issuer = %self.issuer, error = %e,
                    "issuer keys could not be refreshed: the keys fetched before stay in use");
            }
            Err(e) => {
                tracing::error!(issuer = %self.issuer, error = %e,
                    "issuer keys could not be fetched: tokens of this issuer are refused until they are");
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, FetchError> {
        use std::sync::atomic::Ordering::Relaxed;
        let url = {
            let mut source = self.source.lock().await;
            match &*source {
                JwksSource::Url(url) => url.clone(),
                JwksSource::Discover => {
                    self.fetches.fetch_add(1, Relaxed);
                    let url = self.fetcher.jwks_uri(&self.issuer).await?;
                    *source = JwksSource::Url(url.clone());
                    url
                }
            }
        };
        self.fetches.fetch_add(1, Relaxed);
        let (body, keep) = self.fetcher.get(&url).await?;
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&body).map_err(|e| FetchError::Invalid(e.to_string()))?;
        let keys = verifying_keys(&set)
            .into_iter()
            .map(|(kid, key)| (kid, Arc::new(key)))
            .collect();
        Ok(KeySet {
            keys,
            fetched: Instant::now(),
            keep,
        })
    }
}
