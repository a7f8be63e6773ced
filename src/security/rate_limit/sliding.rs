//! [`RateLimiter`]: the in-process [`RateLimitStore`]: a sliding window over sub-buckets,
//! sharded, with bounded memory.
//!
//! ## The guarantee
//! The window `W` is cut into `B` = [`SUB_BUCKETS`] buckets of `W/B`. A request is accepted
//! only if the requests already accepted in the current bucket and the `B` buckets before it
//! number fewer than `N`. Those `B + 1` buckets cover at least `W` of history, and any interval
//! of length `W` overlaps at most `B + 1` consecutive buckets, so **no client ever gets more
//! than `N` accepted requests in any window of length `W`** (within the `N * 1.1` the design
//! asks for; a two-bucket estimate can allow nearly `2N`). The price is that a client may wait
//! up to `W / B` longer than an exact log would make it. The proptest
//! `never_more_than_n_in_any_window` in `tests/it/rate_limit.rs` checks this over random
//! arrival times.
//!
//! ## Memory
//! One client costs one map entry: an 8-byte key and a 48-byte [`Window`] (`B + 1` = 11
//! counters and the index of the newest bucket), 56 bytes, whatever its request rate. The key
//! is a 64-bit SipHash of the client identity under a random per-process key: two clients
//! share a budget only if their keyed hashes collide, which nobody can arrange and which
//! happens by chance with odds of about 1 in 10^7 among a million clients. A sweep also
//! shrinks a shard whose map has emptied, so the memory of a flood is returned.
//! Entries that have seen no request for a whole window are dropped by [`RateLimiter::sweep`],
//! which a background task runs once per window. The number of tracked clients is capped; when
//! the table is full, clients that are not yet tracked share one overflow window with the same
//! limit, so a flood from many addresses is still held to `N` per window in total and tracked
//! clients keep their own budget.
//!
//! ## Identity
//! A client is its IP address; IPv6 addresses are grouped by their first `ipv6_prefix` bits
//! (default /64), since one host is usually given a whole /64 and could rotate through it.
//!
//! The map is split into [`SHARDS`] mutex-protected shards chosen by the key's hash, so clients
//! rarely contend; no lock is held across an `.await`. Time is passed in (`tokio::time`),
//! so tests drive it with a paused clock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::{Decision, Policy, RateLimitStore, Subject};
use crate::security::client_ip::client_key;

/// Sub-buckets per window.
pub const SUB_BUCKETS: u32 = 10;
const SLOTS: usize = SUB_BUCKETS as usize + 1;
/// Shards of the client table.
pub const SHARDS: usize = 64;

/// One client's recent history: request counts per bucket, in a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    counts: [u32; SLOTS],
    /// The index of the newest bucket written.
    newest: u32,
}

impl Window {
    fn new(bucket: u32) -> Self {
        Self {
            counts: [0; SLOTS],
            newest: bucket,
        }
    }

    /// Moves the ring forward to `bucket`, forgetting buckets that left the window.
    fn advance(&mut self, bucket: u32) {
        if bucket <= self.newest {
            return;
        }
        if bucket - self.newest >= SLOTS as u32 {
            self.counts = [0; SLOTS];
        } else {
            for b in self.newest + 1..=bucket {
                self.counts[b as usize % SLOTS] = 0;
            }
        }
        self.newest = bucket;
    }

    fn total(&self) -> u32 {
        self.counts.iter().sum()
    }

    /// The bucket index at which enough old requests have left the window for one more to
    /// fit: bucket `b` stops being counted once the current bucket reaches `b + SLOTS`.
    fn bucket_with_room(&self, limit: u32) -> u32 {
        let mut excess = self.total().saturating_sub(limit.saturating_sub(1));
        let oldest = self.newest.saturating_sub(SUB_BUCKETS);
        for b in oldest..=self.newest {
            let c = self.counts[b as usize % SLOTS];
            if c >= excess {
                return b.saturating_add(SLOTS as u32);
            }
            excess -= c;
        }
        self.newest.saturating_add(SLOTS as u32)
    }

    fn is_idle(&self, bucket: u32) -> bool {
        bucket.saturating_sub(self.newest) >= SLOTS as u32
    }
}

type Shard = HashMap<u64, Window>;

/// The limiter: shared by every connection behind an `Arc`.
#[derive(Debug)]
pub struct RateLimiter {
    policy: Policy,
    epoch: Instant,
    bucket_nanos: u128,
    shards: Vec<Mutex<Shard>>,
    tracked: AtomicUsize,
    overflow: Mutex<Window>,
    hasher: std::collections::hash_map::RandomState,
}

impl RateLimiter {
    pub fn new(policy: Policy, epoch: Instant) -> Self {
        let bucket_nanos = (policy.window.as_nanos() / u128::from(SUB_BUCKETS)).max(1);
        Self {
            policy,
            epoch,
            bucket_nanos,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            tracked: AtomicUsize::new(0),
            overflow: Mutex::new(Window::new(0)),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The identity of a client address (IPv6 grouped by prefix), before hashing.
    pub fn client_key(&self, ip: IpAddr) -> u128 {
        client_key(ip, self.policy.ipv6_prefix)
    }

    /// The bucket `now` falls in, and the nanoseconds since the epoch.
    fn bucket(&self, now: Instant) -> (u32, u128) {
        let elapsed = now.saturating_duration_since(self.epoch).as_nanos();
        (
            u32::try_from(elapsed / self.bucket_nanos).unwrap_or(u32::MAX),
            elapsed,
        )
    }

    /// The table key (a keyed 64-bit hash of the client identity) and its shard.
    fn locate(&self, subject: Subject<'_>) -> (u64, MutexGuard<'_, Shard>) {
        let key = match subject {
            Subject::Address(ip) => self.hasher.hash_one(self.client_key(ip)),
            Subject::Caller(name) => self.hasher.hash_one((1u8, name)),
        };
        let i = (key % SHARDS as u64) as usize;
        (
            key,
            self.shards[i].lock().unwrap_or_else(|e| e.into_inner()),
        )
    }

    fn decide(&self, window: &mut Window, (bucket, elapsed): (u32, u128), count: bool) -> Decision {
        window.advance(bucket);
        let total = window.total();
        if total < self.policy.limit {
            if count {
                window.counts[bucket as usize % SLOTS] += 1;
            }
            Decision::Allowed {
                remaining: self.policy.limit - total - u32::from(count),
            }
        } else {
            let room_at =
                u128::from(window.bucket_with_room(self.policy.limit)) * self.bucket_nanos;
            let nanos = room_at.saturating_sub(elapsed);
            Decision::Limited {
                retry_after: Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
            }
        }
    }

    fn with_window<T>(
        &self,
        subject: Subject<'_>,
        now: Instant,
        f: impl FnOnce(&mut Window, (u32, u128)) -> T,
    ) -> T {
        let at = self.bucket(now);
        let bucket = at.0;
        let (key, mut shard) = self.locate(subject);
        if let Some(w) = shard.get_mut(&key) {
            return f(w, at);
        }
        if self.tracked.load(Ordering::Relaxed) >= self.policy.max_clients {
            // Try to make room from this shard's idle clients before overflowing.
            let before = shard.len();
            shard.retain(|_, w| !w.is_idle(bucket));
            self.tracked
                .fetch_sub(before - shard.len(), Ordering::Relaxed);
        }
        if self.tracked.load(Ordering::Relaxed) >= self.policy.max_clients {
            drop(shard);
            let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
            return f(&mut overflow, at);
        }
        self.tracked.fetch_add(1, Ordering::Relaxed);
        f(shard.entry(key).or_insert_with(|| Window::new(bucket)), at)
    }

    /// Counts one request from `ip` at `now` if it fits.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Decision {
        self.check_subject(Subject::Address(ip), now)
    }

    /// Counts one request from `subject` at `now` if it fits.
    pub fn check_subject(&self, subject: Subject<'_>, now: Instant) -> Decision {
        self.with_window(subject, now, |w, at| self.decide(w, at, true))
    }

    /// Whether `ip` is over its limit at `now`, without counting anything. A client the table
    /// has no room for is judged by the shared overflow window its failures were counted in.
    pub fn peek(&self, ip: IpAddr, now: Instant) -> Decision {
        self.peek_subject(Subject::Address(ip), now)
    }

    /// Whether `subject` is over its limit at `now`, without counting anything.
    pub fn peek_subject(&self, subject: Subject<'_>, now: Instant) -> Decision {
        let at = self.bucket(now);
        let (key, mut shard) = self.locate(subject);
        if let Some(w) = shard.get_mut(&key) {
            return self.decide(w, at, false);
        }
        drop(shard);
        if self.tracked.load(Ordering::Relaxed) >= self.policy.max_clients {
            let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
            return self.decide(&mut overflow, at, false);
        }
        Decision::Allowed {
            remaining: self.policy.limit,
        }
    }

    /// Drops clients idle for a whole window; returns how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let (bucket, _) = self.bucket(now);
        let mut dropped = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let before = shard.len();
            shard.retain(|_, w| !w.is_idle(bucket));
            dropped += before - shard.len();
            // Give memory back after a flood: a map keeps its capacity when entries leave.
            if shard.capacity() > 4 * shard.len() + 64 {
                shard.shrink_to_fit();
            }
        }
        self.tracked.fetch_sub(dropped, Ordering::Relaxed);
        dropped
    }

    /// Clients tracked individually.
    pub fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// Sweeps once per window in the background, until the limiter is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let period = self.policy.window.max(Duration::from_secs(1));
        crate::upkeep::every(self, period, |limiter| {
            limiter.sweep(Instant::now());
        })
    }
}

impl RateLimitStore for RateLimiter {
    fn policy(&self) -> Policy {
        RateLimiter::policy(self)
    }

    fn check(&self, subject: Subject<'_>, now: Instant) -> Decision {
        self.check_subject(subject, now)
    }

    fn peek(&self, subject: Subject<'_>, now: Instant) -> Decision {
        self.peek_subject(subject, now)
    }

    fn tracked(&self) -> usize {
        RateLimiter::tracked(self)
    }

    fn spawn_maintenance(self: Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        Some(RateLimiter::spawn_sweeper(&self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(limit: u32, window_secs: u64) -> Policy {
        Policy {
            limit,
            window: Duration::from_secs(window_secs),
            max_clients: 1000,
            ipv6_prefix: 64,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn state_per_client_is_at_most_64_bytes() {
        assert!(std::mem::size_of::<u64>() + std::mem::size_of::<Window>() <= 64);
    }

    #[tokio::test(start_paused = true)]
    async fn allows_n_then_limits_with_a_retry_after() {
        let l = RateLimiter::new(policy(3, 60), Instant::now());
        let a = ip("10.0.0.1");
        for left in [2, 1, 0] {
            assert_eq!(
                l.check(a, Instant::now()),
                Decision::Allowed { remaining: left }
            );
        }
        let Decision::Limited { retry_after } = l.check(a, Instant::now()) else {
            panic!("should be limited");
        };
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(66));
        tokio::time::advance(retry_after).await;
        assert!(
            matches!(l.check(a, Instant::now()), Decision::Allowed { .. }),
            "room again after Retry-After"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn clients_are_limited_separately_and_ipv6_by_64() {
        let l = RateLimiter::new(policy(1, 60), Instant::now());
        let now = Instant::now();
        assert!(matches!(
            l.check(ip("10.0.0.1"), now),
            Decision::Allowed { .. }
        ));
        assert!(matches!(
            l.check(ip("10.0.0.2"), now),
            Decision::Allowed { .. }
        ));
        assert!(matches!(
            l.check(ip("10.0.0.1"), now),
            Decision::Limited { .. }
        ));
        assert!(matches!(
            l.check(ip("2001:db8:1:2::1"), now),
            Decision::Allowed { .. }
        ));
        assert!(
            matches!(
                l.check(ip("2001:db8:1:2:ffff::9"), now),
                Decision::Limited { .. }
            ),
            "same /64"
        );
        assert!(
            matches!(
                l.check(ip("2001:db8:1:3::1"), now),
                Decision::Allowed { .. }
            ),
            "other /64"
        );
        assert!(
            matches!(
                l.check(ip("::ffff:10.0.0.2"), now),
                Decision::Limited { .. }
            ),
            "v4-mapped is v4"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn peek_counts_nothing() {
        let l = RateLimiter::new(policy(2, 60), Instant::now());
        let a = ip("10.0.0.1");
        for _ in 0..5 {
            assert_eq!(
                l.peek(a, Instant::now()),
                Decision::Allowed { remaining: 2 }
            );
        }
        l.check(a, Instant::now());
        l.check(a, Instant::now());
        assert!(matches!(
            l.peek(a, Instant::now()),
            Decision::Limited { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_clients_are_swept_and_memory_released() {
        let l = RateLimiter::new(policy(5, 10), Instant::now());
        for i in 0..100u32 {
            l.check(IpAddr::from(i.to_be_bytes()), Instant::now());
        }
        assert_eq!(l.tracked(), 100);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(l.sweep(Instant::now()), 0, "still inside the window");
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(l.sweep(Instant::now()), 100);
        assert_eq!(l.tracked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_sweeper_runs_once_per_window() {
        let l = Arc::new(RateLimiter::new(policy(5, 10), Instant::now()));
        let _task = l.spawn_sweeper();
        l.check(ip("10.0.0.1"), Instant::now());
        assert_eq!(l.tracked(), 1);
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(l.tracked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_never_lets_a_flood_through() {
        let mut p = policy(10, 60);
        p.max_clients = 50;
        let l = RateLimiter::new(p, Instant::now());
        let now = Instant::now();
        let mut allowed = 0;
        for i in 0..10_000u32 {
            if matches!(
                l.check(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), now),
                Decision::Allowed { .. }
            ) {
                allowed += 1;
            }
        }
        assert_eq!(l.tracked(), 50);
        assert_eq!(
            allowed,
            50 + 10,
            "50 tracked clients, then the shared overflow window of 10"
        );
        // a tracked client keeps its own budget
        assert!(matches!(
            l.check(IpAddr::from(0x0a00_0000u32.to_be_bytes()), now),
            Decision::Allowed { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn peek_judges_an_untracked_client_by_the_overflow_window_when_the_table_is_full() {
        let mut p = policy(3, 60);
        p.max_clients = 2;
        let l = RateLimiter::new(p, Instant::now());
        let now = Instant::now();
        l.check(ip("10.0.0.1"), now);
        l.check(ip("10.0.0.2"), now);
        // the table is full: these failures land in the shared overflow window
        for _ in 0..3 {
            l.check(ip("10.9.9.9"), now);
        }
        assert!(
            matches!(l.peek(ip("10.9.9.9"), now), Decision::Limited { .. }),
            "a client that did not fit in the table is still refused"
        );
        assert!(matches!(
            l.peek(ip("10.0.0.1"), now),
            Decision::Allowed { .. }
        ));
    }
}
