//! Measures what tracked clients cost the rate limiter: resident memory before, with N distinct
//! clients tracked (default 1,000,000), and after their window passed and the sweep ran.
//! Time is passed to the limiter explicitly, so the run takes seconds, not minutes.
//!
//! Usage: `cargo run --release --example limiter_memory -- [N]`

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use secure_mcp_server::security::rate_limit::{Policy, RateLimiter};
use tokio::time::Instant;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let window = Duration::from_secs(60);
    let epoch = Instant::now();
    let limiter = RateLimiter::new(
        Policy {
            limit: 100,
            window,
            max_clients: n as usize,
            ipv6_prefix: 64,
        },
        epoch,
    );
    let before = rss_kib();
    for i in 0..n {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i)));
        limiter.check(ip, epoch);
    }
    let tracked = limiter.tracked();
    let full = rss_kib();
    let swept = limiter.sweep(epoch + window * 2);
    let after = rss_kib();
    println!(
        "limiter_memory clients={n} tracked={tracked} rss_before_kib={before} rss_tracked_kib={full} added_mib={:.1} per_client_bytes={:.0} swept={swept} rss_after_sweep_kib={after} released_mib={:.1}",
        (full.saturating_sub(before)) as f64 / 1024.0,
        (full.saturating_sub(before)) as f64 * 1024.0 / f64::from(n.max(1)),
        (full.saturating_sub(after)) as f64 / 1024.0,
    );
}
