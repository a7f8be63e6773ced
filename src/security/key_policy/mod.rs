//! Per-key policy: which tools a key may see and call, whether it may read resources, and how
//! much it may use (`--policy PATH`; the format is in [`rules`]).
//!
//! Threat: a key handed to one agent, team or customer doing what another's may (least
//! privilege), and a key spreading its load over many addresses to escape the per-address
//! rate limit.
//!
//! Decisions:
//! - The rules of the calling key travel with the request (`Authenticated::rules`, set by
//!   the key policy right after the key is verified), so a reload that narrows a key takes
//!   effect on its next request, in open sessions too.
//! - A tool the key may not see is unknown to it: `tools/list` leaves it out, and calling it
//!   is answered exactly like a tool that does not exist.
//! - A key's request budget ([`PolicyBook::admit`]) counts each request once: a POST carrying
//!   a request or a notification, a GET that opens a stream, a DELETE. It does not count a
//!   POST that only answers a server-to-client request, keep-alives or events on a stream.
//!   It is checked after the per-address limit; the first one hit answers 429 with its own
//!   `RateLimit-Policy`.
//! - The stores counting a rate are kept across reloads (a reload does not reset a budget),
//!   one per distinct rate, each key (and each key and tool) counting under its own subject.
//! - Reloads fail closed: an entry that does not check out denies its key everything until it
//!   does; a file that cannot be read or parsed denies every key it named last time.

pub mod report;
pub mod rules;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::time::Instant;

use crate::error::Rejection;
use crate::fleet::{Fleet, LeasedStore};
use crate::security::principal::Principal;
use crate::security::rate_limit::{self, Decision, Policy, RateLimitStore, RateLimiter, Subject};
pub use rules::{KeyRules, Limit, Policies, PolicyError, Rate};

/// Subjects one per-key store may track: keys times tools, far below this in practice.
const MAX_SUBJECTS: usize = 65_536;

/// The policies in force, and the stores that count their rates.
pub struct PolicyBook {
    path: Option<PathBuf>,
    current: ArcSwap<Policies>,
    stores: Mutex<HashMap<Rate, Arc<dyn RateLimitStore>>>,
    epoch: Instant,
    /// Where the rates are counted when the instance is one of a fleet.
    fleet: Option<Fleet>,
}

impl std::fmt::Debug for PolicyBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PolicyBook({} keys named)",
            self.current.load().keys.len()
        )
    }
}

/// Why a reload was not taken whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyBook {
    /// No policy file: every key may do everything.
    pub fn unrestricted() -> Self {
        Self {
            path: None,
            current: ArcSwap::from_pointee(Policies::open()),
            stores: Mutex::default(),
            epoch: Instant::now(),
            fleet: None,
        }
    }

    /// The policy file at `path`, read now; at start any problem is fatal. `known`: whether a
    /// key id exists. With a `fleet`, each rate is a budget shared by the fleet.
    pub fn load(
        path: PathBuf,
        known: impl Fn(&str) -> bool,
        fleet: Option<Fleet>,
    ) -> Result<Self, PolicyErrors> {
        let book = Self {
            path: Some(path),
            fleet,
            ..Self::unrestricted()
        };
        match book.read(&known) {
            Ok(policies) => {
                book.current.store(Arc::new(policies));
                Ok(book)
            }
            Err((errors, _)) => Err(PolicyErrors(errors)),
        }
    }

    /// Whether a policy file is configured.
    pub fn is_configured(&self) -> bool {
        self.path.is_some()
    }

    fn read(
        &self,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<Policies, (Vec<PolicyError>, Option<Policies>)> {
        let Some(path) = &self.path else {
            return Ok(Policies::open());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| (vec![PolicyError::Unreadable(e.kind().to_string())], None))?;
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        let epoch = self.epoch;
        let mut store_for = |rate: Rate| -> Arc<dyn RateLimitStore> {
            stores
                .entry(rate)
                .or_insert_with(|| {
                    let policy = Policy {
                        limit: rate.limit,
                        window: rate.window,
                        max_clients: MAX_SUBJECTS,
                        ipv6_prefix: 128,
                    };
                    match &self.fleet {
                        Some(fleet) => {
                            // One Redis namespace per rate: a key's budget and a tool's limit
                            // of the same rate are told apart by their subjects.
                            let name = format!("key{}per{}ms", rate.limit, rate.window.as_millis());
                            let store = Arc::new(LeasedStore::new(fleet, &name, policy, epoch));
                            store.clone().spawn_maintenance();
                            store
                        }
                        None => Arc::new(RateLimiter::new(policy, epoch)),
                    }
                })
                .clone()
        };
        Policies::parse(&text, known, &mut store_for)
    }

    /// Re-reads the file. On a problem, the sound entries are taken, every other key it names
    /// is denied everything, and the problems are returned; a file that cannot be read or
    /// parsed denies every key the policies in force name.
    pub fn reload(&self, known: impl Fn(&str) -> bool) -> Result<(), PolicyErrors> {
        match self.read(&known) {
            Ok(policies) => {
                self.current.store(Arc::new(policies));
                Ok(())
            }
            Err((errors, Some(partial))) => {
                self.current.store(Arc::new(partial));
                Err(PolicyErrors(errors))
            }
            Err((errors, None)) => {
                let previous = self.current.load_full();
                self.current
                    .store(Arc::new(Policies::fail_closed(&previous)));
                Err(PolicyErrors(errors))
            }
        }
    }

    /// The rules of a token's caller holding `scopes` now (see [`Policies::rules_for_token`]).
    pub fn rules_for_token(&self, principal: &Principal, scopes: &[String]) -> Arc<KeyRules> {
        self.current
            .load()
            .rules_for_token(principal.name(), scopes)
    }

    /// The rules of `principal` now.
    pub fn rules_for(&self, principal: &Principal) -> Arc<KeyRules> {
        self.current.load().rules_for(principal.name()).clone()
    }

    /// Counts one request of `caller` against its budget under `rules`; 429 when it is spent.
    pub async fn admit(
        rules: &KeyRules,
        caller: &Principal,
        now: Instant,
    ) -> Result<(), Rejection> {
        let Some(limit) = &rules.rate_limit else {
            return Ok(());
        };
        let subject = caller.binding();
        match limit
            .store
            .acquire(Subject::Caller(subject), now)
            .decision()
            .await
        {
            Decision::Allowed { .. } => Ok(()),
            Decision::Limited { retry_after } => {
                Err(rate_limit::limited(&*limit.store, retry_after))
            }
        }
    }

    /// Counts one call of `tool` against the caller's budget for it; the whole seconds to
    /// wait when it is spent.
    pub async fn admit_tool(
        rules: &KeyRules,
        caller: &Principal,
        tool: &str,
        now: Instant,
    ) -> Result<(), u64> {
        let Some(limit) = rules.tool_limits.get(tool) else {
            return Ok(());
        };
        let subject = format!("{}\0{tool}", caller.binding());
        match limit
            .store
            .acquire(Subject::Caller(&subject), now)
            .decision()
            .await
        {
            Decision::Allowed { .. } => Ok(()),
            Decision::Limited { retry_after } => Err(retry_after
                .as_secs()
                .saturating_add(u64::from(retry_after.subsec_nanos() > 0))
                .max(1)),
        }
    }
}

/// The policy decision a response carries for the audit and the metrics (a response
/// extension): one of a closed set of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyDecision(pub &'static str);

impl PolicyDecision {
    pub const DENIED_TOOL: Self = Self("denied_tool");
    pub const KEY_RATE_LIMITED: Self = Self("key_rate_limited");
    pub const TOOL_RATE_LIMITED: Self = Self("tool_rate_limited");
}
