//! [`LeasedStore`]: a rate-limit budget shared by every instance of a fleet, counted in Redis
//! and spent locally from leases.
//!
//! ## The algorithm
//! Redis keeps, per client, the same sub-bucket window as the in-process limiter
//! ([`crate::security::rate_limit::sliding`]): `B + 1` counts of `W / B`, on Redis's clock
//! (`TIME`), in one hash per client. [`super::script::SCRIPT_LEASE`] runs atomically: it drops buckets that left the
//! window, and grants up to `want` requests if the last `B + 1` buckets hold fewer than `N`,
//! charging them to the current bucket. The instance then accepts that many requests of the
//! client without asking again: that is its lease. A lease ends with its bucket: the instance
//! sets its end to the time it sent the script plus the time the script found left in the
//! bucket, so every request a lease admits is admitted, in real time, inside the bucket it
//! was charged to. Any interval of length `W` overlaps at most `B + 1` buckets, whose counts
//! Redis never let exceed `N`: **fleet-wide, a client gets at most `N` requests in any window
//! of length `W`** while Redis answers, whatever the number of instances (the 1.1 N the design
//! allows is a margin this keeps). What a lease did not spend is handed back with the next
//! lease, if its bucket is still in the window.
//!
//! ## Cost
//! A lease is `clamp(N / (10 x fleet size), 1, 256)` requests: one round trip per lease, per
//! client, per instance, and at least one per bucket in which the client is active. A request
//! that finds no lease waits for one (requests of the same client share the round trip);
//! requests that find one never touch Redis. With leases of 4 or more, the next lease is
//! asked for when a quarter of the current one is left, so a busy client does not wait for
//! its refills (measured in BENCHMARKS.md). Tokens leased but unspent count against the
//! client until handed back, so a client spread over `k` instances may be refused up to
//! `k` leases early: the price of not asking Redis on every request.
//!
//! ## Without Redis
//! When Redis does not answer within [`super::link::OP_TIMEOUT`] the decision comes from the
//! fallback: a local limiter at `N / fleet size` (`--redis-fallback local`) or a refusal with
//! a retry time (`deny`). Either is counted; neither is a 5xx. A window that spans the switch
//! may hold what Redis admitted and what the fallback admits.
//!
//! ## Counting after the fact
//! [`RateLimitStore::check`] (used to count a failed authentication once the 401 is known)
//! cannot wait: it spends a lease token if there is one and otherwise owes the request to the
//! next lease. [`RateLimitStore::peek`] knows what this instance last heard: a client refused
//! by Redis stays refused here until its retry time; one that another instance refused is
//! refused here from its next counted failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::script::LEASE;
use super::{Fallback, Fleet};
use crate::security::client_ip::client_key;
use crate::security::rate_limit::{
    Acquire, Decision, Policy, RateLimitStore, RateLimiter, SUB_BUCKETS, Subject,
};

const SHARDS: usize = 16;
/// The largest lease.
const MOST_PER_LEASE: u32 = 256;
/// How long a request waits for a lease before the fallback decides.
const LEASE_WAIT: Duration = super::link::OP_TIMEOUT;

/// A client's name in Redis: a keyed digest of who it is, so Redis holds no address or key
/// id. Computed once per client, when its entry is made.
type Digest = [u8; 16];

/// A client's entry in the local table: a 64-bit SipHash of who it is under a random
/// per-process key (as in the in-process limiter: two clients share an entry only if their
/// keyed hashes collide). Cheaper per request than the digest.
type Slot = u64;

/// What this instance holds of one client's shared budget.
#[derive(Debug)]
struct Lease {
    /// The client's name in Redis.
    digest: Digest,
    /// Requests it may still admit.
    tokens: u32,
    /// When those requests stop being admissible (the end of their bucket).
    expires: Instant,
    /// The Redis bucket they were charged to.
    bucket: i64,
    /// Requests admitted without a lease, to charge with the next one.
    owed: u32,
    /// Redis found the client over its limit: refused until then.
    refused_until: Option<Instant>,
    /// The lease request in flight, which waiting requests are woken by.
    fetching: Option<Arc<Notify>>,
    /// The last request (for the sweep).
    seen: Instant,
    /// Requests of an ended lease not spent, and their bucket: handed back with the next
    /// lease request.
    back: Option<(i64, u32)>,
}

impl Lease {
    /// Moves the unspent requests to `back` (an older bucket's are dropped: keeping them
    /// charged only ever refuses sooner).
    fn give_back(&mut self) {
        if self.tokens > 0 {
            self.back = Some((self.bucket, std::mem::take(&mut self.tokens)));
        }
    }
}

/// A subject kept by a request that waits.
#[derive(Debug, Clone)]
enum OwnedSubject {
    Address(IpAddr),
    Caller(String),
}

impl OwnedSubject {
    fn of(subject: Subject<'_>) -> Self {
        match subject {
            Subject::Address(ip) => Self::Address(ip),
            Subject::Caller(name) => Self::Caller(name.to_owned()),
        }
    }

    fn borrow(&self) -> Subject<'_> {
        match self {
            Self::Address(ip) => Subject::Address(*ip),
            Self::Caller(name) => Subject::Caller(name),
        }
    }
}

/// One step of taking a request from a lease.
enum Step {
    Done(Decision),
    Wait(tokio::sync::futures::OwnedNotified),
}

/// A budget shared through Redis (see the module doc).
#[derive(Debug)]
pub struct LeasedStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Names the budget in Redis keys (`smcp:rl:<name>:<digest>`).
    name: String,
    policy: Policy,
    bucket_ms: u64,
    slice: u32,
    fleet: Fleet,
    /// The local limiter the fallback uses (`None`: refuse).
    fallback: Option<RateLimiter>,
    leases: Vec<Mutex<HashMap<Slot, Lease>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl LeasedStore {
    /// The budget `name` of `policy`, shared through `fleet`.
    pub fn new(fleet: &Fleet, name: &str, policy: Policy, epoch: Instant) -> Self {
        let size = fleet.size.max(1);
        let fallback = match fleet.fallback {
            Fallback::Local => Some(RateLimiter::new(
                Policy {
                    limit: (policy.limit / size).max(1),
                    ..policy
                },
                epoch,
            )),
            Fallback::Deny => None,
        };
        let bucket_ms = u64::try_from((policy.window / SUB_BUCKETS).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                policy,
                bucket_ms,
                slice: (policy.limit / (10 * size)).clamp(1, MOST_PER_LEASE),
                fleet: fleet.clone(),
                fallback,
                leases: (0..SHARDS).map(|_| Mutex::default()).collect(),
                hasher: std::collections::hash_map::RandomState::new(),
            }),
        }
    }

    /// Requests one lease admits.
    pub fn slice(&self) -> u32 {
        self.inner.slice
    }
}

impl Inner {
    fn digest(&self, subject: Subject<'_>) -> Digest {
        match subject {
            Subject::Address(ip) => self.fleet.digest(
                &self.name,
                0,
                &client_key(ip, self.policy.ipv6_prefix).to_be_bytes(),
            ),
            Subject::Caller(name) => self.fleet.digest(&self.name, 1, name.as_bytes()),
        }
    }

    fn slot(&self, subject: Subject<'_>) -> Slot {
        use std::hash::BuildHasher;
        match subject {
            Subject::Address(ip) => self
                .hasher
                .hash_one(client_key(ip, self.policy.ipv6_prefix)),
            Subject::Caller(name) => self.hasher.hash_one((1u8, name)),
        }
    }

    fn shard(&self, slot: Slot) -> MutexGuard<'_, HashMap<Slot, Lease>> {
        self.leases[(slot % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The fallback's decision (counted).
    fn fallback(&self, subject: Subject<'_>, now: Instant, count: bool) -> Decision {
        self.fleet
            .link
            .stats
            .fallback_decisions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match &self.fallback {
            Some(local) if count => local.check_subject(subject, now),
            Some(local) => local.peek_subject(subject, now),
            None => Decision::Limited {
                retry_after: Duration::from_secs(1),
            },
        }
    }

    /// Takes one request from the client's lease, or starts (or joins) the request for one.
    fn take(self: &Arc<Self>, slot: Slot, subject: Subject<'_>, now: Instant) -> Step {
        if !self.fleet.link.is_up() {
            return Step::Done(self.fallback(subject, now, true));
        }
        let mut shard = self.shard(slot);
        if !shard.contains_key(&slot) && shard.len() > self.policy.max_clients / SHARDS {
            // The table is full: judged by the fallback until the sweep makes room.
            drop(shard);
            return Step::Done(self.fallback(subject, now, true));
        }
        let lease = shard.entry(slot).or_insert_with(|| Lease {
            digest: self.digest(subject),
            tokens: 0,
            expires: now,
            bucket: 0,
            owed: 0,
            refused_until: None,
            fetching: None,
            seen: now,
            back: None,
        });
        lease.seen = now;
        if let Some(until) = lease.refused_until {
            if until > now {
                return Step::Done(Decision::Limited {
                    retry_after: until - now,
                });
            }
            lease.refused_until = None;
        }
        if lease.expires > now && lease.tokens > 0 {
            lease.tokens -= 1;
            // The next lease is asked for while this one still serves: no request waits on
            // a busy client's refill.
            if lease.tokens <= self.slice / 4 && self.slice >= 4 {
                self.fetch(slot, lease, now);
            }
            return Step::Done(Decision::Allowed {
                remaining: lease.tokens,
            });
        }
        let notify = self.fetch(slot, lease, now);
        Step::Wait(notify.notified_owned())
    }

    /// The request for a new lease in flight for `lease`, started if there is none.
    fn fetch(self: &Arc<Self>, slot: Slot, lease: &mut Lease, now: Instant) -> Arc<Notify> {
        if let Some(notify) = &lease.fetching {
            return notify.clone();
        }
        let notify = Arc::new(Notify::new());
        lease.fetching = Some(notify.clone());
        // What an ended lease did not spend goes back with this request.
        if lease.expires <= now && lease.tokens > 0 {
            lease.give_back();
        }
        let (back_bucket, back) = lease.back.take().unwrap_or((0, 0));
        let owed = std::mem::take(&mut lease.owed);
        let (this, digest) = (self.clone(), lease.digest);
        tokio::spawn(async move { this.lease(slot, digest, owed, back_bucket, back).await });
        notify
    }

    /// One round trip: a lease for the client `digest` names, stored in its `slot`; wakes the
    /// requests waiting.
    async fn lease(
        self: Arc<Self>,
        slot: Slot,
        digest: Digest,
        owed: u32,
        back_bucket: i64,
        back: u32,
    ) {
        let key = format!("smcp:rl:{}:{}", self.name, hex::encode(digest));
        let (limit, bucket_ms, want) = (self.policy.limit, self.bucket_ms, self.slice);
        let sent = Instant::now();
        let answer = self
            .fleet
            .link
            .run(|mut c| async move {
                LEASE
                    .key(key)
                    .arg(limit)
                    .arg(bucket_ms)
                    .arg(want)
                    .arg(owed)
                    .arg(back_bucket)
                    .arg(back)
                    .invoke_async::<(u32, i64, u64, u64)>(&mut c)
                    .await
            })
            .await;
        let mut shard = self.shard(slot);
        let Some(lease) = shard.get_mut(&slot) else {
            return;
        };
        if let Some((granted, bucket, left_ms, retry_ms)) = answer {
            // Ends no later than the bucket does on Redis's clock (less a millisecond for the
            // script's rounding), measured from before the script ran.
            let expires = sent + Duration::from_millis(left_ms.saturating_sub(1));
            if lease.tokens > 0 && lease.bucket == bucket {
                // Asked for ahead of time, in the same bucket: one lease.
                lease.tokens += granted;
                lease.expires = lease.expires.max(expires);
            } else {
                // Redis is in a later bucket: what the old lease still had can no longer
                // be spent (its bucket has ended), and goes back next time.
                lease.give_back();
                lease.tokens = granted;
                lease.bucket = bucket;
                lease.expires = expires;
            }
            let spent_owed = lease.owed.min(lease.tokens);
            lease.tokens -= spent_owed;
            lease.owed -= spent_owed;
            lease.refused_until = (lease.tokens == 0 && retry_ms > 0)
                .then(|| sent + Duration::from_millis(retry_ms.max(1)));
        } else {
            // The link is down: what was owed is forgotten with the outage.
            lease.owed = 0;
        }
        if let Some(notify) = lease.fetching.take() {
            notify.notify_waiters();
        }
    }

    /// Drops clients seen by no request for a whole window (and with no lease in flight).
    fn sweep(&self, now: Instant) -> usize {
        let mut dropped = 0;
        for shard in &self.leases {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let before = shard.len();
            shard.retain(|_, l| {
                l.fetching.is_some() || now.saturating_duration_since(l.seen) < self.policy.window
            });
            dropped += before - shard.len();
            if shard.capacity() > 4 * shard.len() + 64 {
                shard.shrink_to_fit();
            }
        }
        if let Some(local) = &self.fallback {
            local.sweep(now);
        }
        dropped
    }
}

/// Waits for the lease in flight, then takes from it; the fallback decides after
/// [`LEASE_WAIT`].
async fn wait_for_lease(
    inner: Arc<Inner>,
    slot: Slot,
    subject: OwnedSubject,
    mut woken: tokio::sync::futures::OwnedNotified,
    deadline: Instant,
) -> Decision {
    loop {
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            return inner.fallback(subject.borrow(), Instant::now(), true);
        }
        match inner.take(slot, subject.borrow(), Instant::now()) {
            Step::Done(decision) => return decision,
            Step::Wait(next) => woken = next,
        }
    }
}

impl RateLimitStore for LeasedStore {
    fn policy(&self) -> Policy {
        self.inner.policy
    }

    /// Counts now and charges later (see "Counting after the fact").
    fn check(&self, subject: Subject<'_>, now: Instant) -> Decision {
        let inner = &self.inner;
        if !inner.fleet.link.is_up() {
            return inner.fallback(subject, now, true);
        }
        let slot = inner.slot(subject);
        match inner.take(slot, subject, now) {
            Step::Done(decision) => decision,
            Step::Wait(_) => {
                let mut shard = inner.shard(slot);
                if let Some(lease) = shard.get_mut(&slot) {
                    lease.owed += 1;
                }
                Decision::Allowed { remaining: 0 }
            }
        }
    }

    fn peek(&self, subject: Subject<'_>, now: Instant) -> Decision {
        let inner = &self.inner;
        if !inner.fleet.link.is_up() {
            return inner.fallback(subject, now, false);
        }
        let slot = inner.slot(subject);
        let shard = inner.shard(slot);
        match shard.get(&slot).and_then(|l| l.refused_until) {
            Some(until) if until > now => Decision::Limited {
                retry_after: until - now,
            },
            _ => Decision::Allowed {
                remaining: inner.policy.limit,
            },
        }
    }

    fn acquire(&self, subject: Subject<'_>, now: Instant) -> Acquire {
        let inner = &self.inner;
        if !inner.fleet.link.is_up() {
            return Acquire::Ready(inner.fallback(subject, now, true));
        }
        let slot = inner.slot(subject);
        match inner.take(slot, subject, now) {
            Step::Done(decision) => Acquire::Ready(decision),
            Step::Wait(woken) => Acquire::Wait(Box::pin(wait_for_lease(
                inner.clone(),
                slot,
                OwnedSubject::of(subject),
                woken,
                now + LEASE_WAIT,
            ))),
        }
    }

    fn tracked(&self) -> usize {
        self.inner
            .leases
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    fn spawn_maintenance(self: Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let period = self.inner.policy.window.max(Duration::from_secs(1));
        Some(crate::upkeep::every(&self.inner, period, |inner| {
            inner.sweep(Instant::now());
        }))
    }
}
