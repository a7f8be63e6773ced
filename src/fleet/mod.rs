//! Several instances behind one address, sharing through Redis what a client must not be
//! able to multiply by spreading its requests: rate-limit budgets ([`lease`]) and 2025-era
//! sessions ([`sessions`]). Without `--redis-url` none of this exists and every store is the
//! in-process one.
//!
//! ## What Redis holds
//! Counts per client under `smcp:rl:<budget>:<digest>`, where the digest is an HMAC-SHA256
//! (truncated to 128 bits) of the client's address or key binding under a key derived from the
//! fleet's state secret, session records under `smcp:session:<digest of the session id>`
//! (the key binding's digest, protocol version, client capabilities, expiry), and task records
//! under `smcp:task:<digest of the task id>` ([`tasks`]: the owner's digest, the tool, and the
//! task's status and result until its TTL). Never a key, a token, an address, a session id or
//! a task id in clear. The state secret stays in its file: Redis
//! read access must not be enough to forge a `requestState`.
//!
//! ## Decisions recorded here
//! - `--redis-url` needs `--state-secret-file` (one secret opens every instance's sealed
//!   state and keys the digests) and `--fleet-size` (the fallback divides each budget by it):
//!   both are configuration errors when missing, since a silent default would either break
//!   multi-round requests or multiply every budget during an outage.
//! - The connection is lazy: an instance starts and serves while Redis is down, on its
//!   fallback, and goes to the shared budgets when Redis first answers.

pub mod lease;
pub mod link;
pub mod script;
pub mod sessions;
pub mod tasks;

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use lease::LeasedStore;
pub use link::RedisLink;

/// What a budget does while Redis does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fallback {
    /// A local limiter at the budget divided by the fleet size.
    Local,
    /// Refuse (429 with a retry time).
    Deny,
}

/// How to reach the fleet's Redis.
#[derive(Clone)]
pub struct FleetOptions {
    /// `redis://` or `rediss://` (TLS).
    pub url: String,
    /// Overrides the URL's password (`MCP_REDIS_PASSWORD`).
    pub password: Option<String>,
    pub fallback: Fallback,
    /// Instances behind the balancer.
    pub size: u32,
}

impl std::fmt::Debug for FleetOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the URL (it may carry a password) nor the password.
        f.debug_struct("FleetOptions")
            .field("fallback", &self.fallback)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Why the fleet's Redis cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// The URL does not parse; the URL itself is not repeated (it may hold a password).
    #[error("not a redis:// or rediss:// URL ({0})")]
    BadUrl(String),
}

/// An instance's membership of a fleet: the link to Redis and the key of its digests.
#[derive(Clone)]
pub struct Fleet {
    pub link: Arc<RedisLink>,
    mac: Hmac<Sha256>,
    pub size: u32,
    pub fallback: Fallback,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fleet(size {}, {:?})", self.size, self.link)
    }
}

impl Fleet {
    /// A fleet over `options.url`, its digests keyed by `secret`. Connects lazily: Redis need
    /// not answer yet. Needs a Tokio runtime.
    pub fn connect(options: &FleetOptions, secret: &[u8]) -> Result<Self, FleetError> {
        use redis::IntoConnectionInfo;
        let mut info = options
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| FleetError::BadUrl(format!("{:?}", e.kind())))?;
        if let Some(password) = &options.password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client =
            redis::Client::open(info).map_err(|e| FleetError::BadUrl(format!("{:?}", e.kind())))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(link::OP_TIMEOUT))
            .set_response_timeout(Some(link::OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let manager = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| FleetError::BadUrl(format!("{:?}", e.kind())))?;
        Ok(Self::over(RedisLink::new(manager), secret, options))
    }

    /// A fleet over an existing link.
    pub fn over(link: Arc<RedisLink>, secret: &[u8], options: &FleetOptions) -> Self {
        use sha2::Digest;
        let mut h = Sha256::new();
        h.update(b"secure-mcp-server fleet digests\0");
        h.update(secret);
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&h.finalize())
            .expect("HMAC-SHA256 takes a key of any length");
        Self {
            link,
            mac,
            size: options.size.max(1),
            fallback: options.fallback,
        }
    }

    /// The link's figures, for the metrics.
    pub fn figures(&self) -> crate::observability::metrics::FleetFigures {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &self.link.stats;
        crate::observability::metrics::FleetFigures {
            redis_up: self.link.is_up(),
            round_trips: stats.round_trips.load(Relaxed),
            outages: stats.outages.load(Relaxed),
            fallback_decisions: stats.fallback_decisions.load(Relaxed),
        }
    }

    /// The 128-bit digest that names a client of `space` in Redis.
    pub fn digest(&self, space: &str, tag: u8, identity: &[u8]) -> [u8; 16] {
        let mut mac = self.mac.clone();
        mac.update(space.as_bytes());
        mac.update(&[0, tag]);
        mac.update(identity);
        let full = mac.finalize().into_bytes();
        let mut out = [0; 16];
        out.copy_from_slice(&full[..16]);
        out
    }
}
