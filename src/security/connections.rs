//! Connection slots: at most `--max-connections` open at once, and at most
//! `--max-connections-per-ip` from one client address, both taken at accept, before a byte of
//! the connection is read.
//!
//! Threat: one client (or one IPv6 prefix, see [`client_key`]) opening idle sockets or long
//! streams until nobody else can connect. The per-address cap keeps a slot for everyone else;
//! the global cap bounds descriptors and memory.
//!
//! Decisions:
//! - The address is the TCP peer: nothing of the request is known at accept. A trusted proxy
//!   (`--trusted-proxy`) carries many clients on its connections, so it counts only against the
//!   global cap; the per-client limits behind it are the rate limiter's.
//! - The table holds one entry per address with at least one open connection and drops it with
//!   the last one, so it never holds more entries than there are open connections.
//! - A refused connection is closed at once; the caller counts it and logs it (throttled).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::security::client_ip::client_key;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is taken.
    Total,
    /// This address holds its share.
    PerAddress,
}

#[derive(Debug)]
struct Counts {
    open: usize,
    per_address: HashMap<u128, usize>,
}

/// The open connections, in total and per client address.
#[derive(Debug)]
pub struct ConnectionLimiter {
    counts: Mutex<Counts>,
    max_total: usize,
    max_per_address: usize,
    ipv6_prefix: u8,
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_address: usize, ipv6_prefix: u8) -> Self {
        Self {
            counts: Mutex::new(Counts {
                open: 0,
                per_address: HashMap::new(),
            }),
            max_total,
            max_per_address,
            ipv6_prefix,
        }
    }

    /// Takes a slot for a connection from `peer`; `exempt` peers (trusted proxies) take only a
    /// global one. The slot is given back when the returned guard drops.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, exempt: bool) -> Result<Slot, Refused> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.open >= self.max_total {
            return Err(Refused::Total);
        }
        let key = (!exempt).then(|| client_key(peer, self.ipv6_prefix));
        if let Some(key) = key {
            let held = counts.per_address.entry(key).or_insert(0);
            // `max_per_address` is at least 1, so a refused address already has an entry.
            if *held >= self.max_per_address {
                return Err(Refused::PerAddress);
            }
            *held += 1;
        }
        counts.open += 1;
        Ok(Slot {
            limiter: self.clone(),
            key,
        })
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).open
    }

    /// Addresses with at least one open connection.
    pub fn addresses(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .per_address
            .len()
    }
}

/// One open connection's slot.
#[derive(Debug)]
pub struct Slot {
    limiter: Arc<ConnectionLimiter>,
    key: Option<u128>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        counts.open -= 1;
        if let Some(key) = self.key
            && let Some(held) = counts.per_address.get_mut(&key)
        {
            *held -= 1;
            if *held == 0 {
                counts.per_address.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn one_address_holds_at_most_its_share_and_others_still_get_in() {
        let limiter = Arc::new(ConnectionLimiter::new(10, 2, 64));
        let a1 = limiter.admit(ip("192.0.2.1"), false).expect("1");
        let _a2 = limiter.admit(ip("192.0.2.1"), false).expect("2");
        assert_eq!(
            limiter.admit(ip("192.0.2.1"), false).err(),
            Some(Refused::PerAddress)
        );
        let _b = limiter
            .admit(ip("192.0.2.2"), false)
            .expect("another address");
        drop(a1);
        assert!(
            limiter.admit(ip("192.0.2.1"), false).is_ok(),
            "a slot came back"
        );
    }

    #[test]
    fn an_ipv6_prefix_is_one_address_and_mapped_ipv4_is_ipv4() {
        let limiter = Arc::new(ConnectionLimiter::new(10, 1, 64));
        let _a = limiter.admit(ip("2001:db8::1"), false).expect("1");
        assert_eq!(
            limiter.admit(ip("2001:db8::ffff:2"), false).err(),
            Some(Refused::PerAddress)
        );
        let _b = limiter
            .admit(ip("2001:db8:0:1::1"), false)
            .expect("next /64");
        let _c = limiter.admit(ip("192.0.2.9"), false).expect("v4");
        assert_eq!(
            limiter.admit(ip("::ffff:192.0.2.9"), false).err(),
            Some(Refused::PerAddress)
        );
    }

    #[test]
    fn the_total_bounds_everyone_and_exempt_proxies_skip_only_the_share() {
        let limiter = Arc::new(ConnectionLimiter::new(3, 1, 64));
        let proxy = ip("10.0.0.1");
        let held: Vec<_> = (0..3)
            .map(|_| limiter.admit(proxy, true).expect("proxy"))
            .collect();
        assert_eq!(
            limiter.admit(ip("192.0.2.1"), false).err(),
            Some(Refused::Total)
        );
        assert_eq!(limiter.addresses(), 0, "exempt peers are not tracked");
        drop(held);
        assert_eq!(limiter.open(), 0);
    }

    #[test]
    fn the_table_forgets_an_address_with_its_last_connection() {
        let limiter = Arc::new(ConnectionLimiter::new(100, 5, 64));
        let slots: Vec<_> = (1..=20u8)
            .map(|i| {
                limiter
                    .admit(IpAddr::from([192, 0, 2, i]), false)
                    .expect("slot")
            })
            .collect();
        assert_eq!(limiter.addresses(), 20);
        drop(slots);
        assert_eq!((limiter.addresses(), limiter.open()), (0, 0));
        // a refusal leaves no entry behind
        let tight = Arc::new(ConnectionLimiter::new(100, 1, 64));
        let _one = tight.admit(ip("192.0.2.1"), false).expect("one");
        let _ = tight.admit(ip("192.0.2.1"), false);
        assert_eq!(tight.addresses(), 1);
    }
}
