//! Summaries of over-limit rejections, so a flood cannot grow the audit log without bound.
//!
//! A client over its request budget gets 429 for the rest of the window. The first 429 of a
//! window is audited as usual; the rest of that window's 429s from the same client are only
//! counted, and the count travels on the client's next audited 429 (`"suppressed": n`) or, if
//! the flood stops, on a summary event written when the window has passed. Every request is
//! still counted in the metrics and still gets its `X-Request-Id`.
//!
//! Per client (an IPv6 client: its /64) that is at most `limit + 2` audit lines per window,
//! whatever it sends. The table holds one entry per client seen over its limit this window, at
//! most [`MAX_CLIENTS`]; clients beyond that share one entry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::security::client_ip::client_key;

/// Clients summarised one by one at most; the rest share one entry.
pub const MAX_CLIENTS: usize = 100_000;
/// The key of the shared entry.
const SHARED: u128 = u128::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    client: Option<IpAddr>,
    since: Instant,
    suppressed: u64,
}

/// Over-limit rejections per client and window.
#[derive(Debug)]
pub struct RejectionSummary {
    window: Duration,
    max_clients: usize,
    table: Mutex<HashMap<u128, Entry>>,
}

impl RejectionSummary {
    pub fn new(window: Duration) -> Self {
        Self::with_capacity(window, MAX_CLIENTS)
    }

    pub fn with_capacity(window: Duration, max_clients: usize) -> Self {
        Self {
            window,
            max_clients,
            table: Mutex::new(HashMap::new()),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// An over-limit rejection of `client` at `now`: `Some(n)` to audit it, carrying the `n`
    /// rejections summarised since the last audited one; `None` to only count it.
    pub fn admit(&self, client: Option<IpAddr>, now: Instant) -> Option<u64> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = client.map_or(SHARED, |ip| client_key(ip, 64));
        if !table.contains_key(&key) && table.len() >= self.max_clients {
            key = SHARED;
        }
        match table.get_mut(&key) {
            Some(e) if now.saturating_duration_since(e.since) < self.window => {
                e.suppressed += 1;
                None
            }
            Some(e) => {
                let carried = e.suppressed;
                e.since = now;
                e.suppressed = 0;
                Some(carried)
            }
            None => {
                table.insert(
                    key,
                    Entry {
                        client,
                        since: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }

    /// Forgets the clients whose window has passed; returns those with rejections still to
    /// report, and how many.
    pub fn drain_expired(&self, now: Instant) -> Vec<(Option<IpAddr>, u64)> {
        self.drain(|e| now.saturating_duration_since(e.since) >= self.window)
    }

    /// Forgets every client (at shutdown); returns those with rejections still to report.
    pub fn drain_all(&self) -> Vec<(Option<IpAddr>, u64)> {
        self.drain(|_| true)
    }

    fn drain(&self, done: impl Fn(&Entry) -> bool) -> Vec<(Option<IpAddr>, u64)> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        table.retain(|_, e| {
            if !done(e) {
                return true;
            }
            if e.suppressed > 0 {
                out.push((e.client, e.suppressed));
            }
            false
        });
        out
    }

    /// Clients in the table.
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[tokio::test(start_paused = true)]
    async fn one_event_per_client_and_window_carries_the_count_of_the_rest() {
        let s = RejectionSummary::new(Duration::from_secs(60));
        let a = ip("192.0.2.1");
        assert_eq!(s.admit(a, Instant::now()), Some(0));
        for _ in 0..999 {
            assert_eq!(s.admit(a, Instant::now()), None);
        }
        assert_eq!(
            s.admit(ip("192.0.2.2"), Instant::now()),
            Some(0),
            "per client"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            s.admit(a, Instant::now()),
            Some(999),
            "the count travels on"
        );
        assert_eq!(s.admit(a, Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_that_stops_is_reported_once_its_window_passes() {
        let s = RejectionSummary::new(Duration::from_secs(60));
        let a = ip("192.0.2.1");
        for _ in 0..50 {
            s.admit(a, Instant::now());
        }
        s.admit(ip("192.0.2.9"), Instant::now());
        assert!(
            s.drain_expired(Instant::now()).is_empty(),
            "the window is open"
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(s.drain_expired(Instant::now()), [(a, 49)]);
        assert!(s.is_empty(), "both forgotten");
        s.admit(a, Instant::now());
        s.admit(a, Instant::now());
        assert_eq!(s.drain_all(), [(a, 1)], "at shutdown, whatever is open");
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_is_bounded_and_the_rest_share_one_entry() {
        let s = RejectionSummary::with_capacity(Duration::from_secs(60), 10);
        let now = Instant::now();
        let admitted = (0..1000u32)
            .filter(|i| s.admit(Some(IpAddr::from(i.to_be_bytes())), now).is_some())
            .count();
        assert_eq!(s.len(), 11);
        assert_eq!(admitted, 11, "ten clients and the shared entry");
    }
}
