//! A fleet (`--redis-url`): one budget per client across every instance, Redis holding
//! digests only, and an outage that degrades to the local fallback and recovers by itself.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::redis_server::{RedisServer, fleet, wait_until_up};
use crate::support::{Harness, KEY};

/// Sends `count` `tools/list` requests round-robin over `instances`; the statuses.
async fn spread(instances: &[Harness], count: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::with_capacity(count);
    for i in 0..count {
        let reply = instances[i % instances.len()]
            .modern("tools/list", json!({}))
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                reply.header("retry-after").is_some(),
                "429 without Retry-After"
            );
        }
        statuses.push(reply.status);
    }
    statuses
}

fn accepted(statuses: &[StatusCode]) -> usize {
    statuses.iter().filter(|s| **s == StatusCode::OK).count()
}

fn server_errors(statuses: &[StatusCode]) -> usize {
    statuses.iter().filter(|s| s.is_server_error()).count()
}

#[tokio::test]
async fn three_instances_hold_one_client_to_one_budget() {
    let redis = RedisServer::start();
    let (instances, _dir) = fleet(&redis, 3, &["--rate-limit", "30"]);
    let statuses = spread(&instances, 120).await;
    let ok = accepted(&statuses);
    // Never more than N in the window; leases of one request each leave at most one
    // unspent per instance.
    assert!(
        ok <= 30,
        "{ok} accepted, the budget is 30 for the whole fleet"
    );
    assert!(
        ok >= 27,
        "{ok} accepted: leases wasted more than one request per instance"
    );
    assert_eq!(server_errors(&statuses), 0);
    // Without the fleet each instance would have let 30 through: 90.
}

/// `n` instances whose policy gives the first key `rate`.
fn fleet_with_key_rate(
    redis: &RedisServer,
    n: usize,
    rate: &str,
) -> (Vec<Harness>, [tempfile::TempDir; 2]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, format!("[keys.cli-1]\nrate_limit = \"{rate}\"\n")).expect("write");
    let policy = policy.to_string_lossy().into_owned();
    let (instances, secret) = fleet(redis, n, &["--policy", &policy]);
    (instances, [dir, secret])
}

#[tokio::test]
async fn a_key_budget_holds_across_instances() {
    let redis = RedisServer::start();
    let (instances, _dirs) = fleet_with_key_rate(&redis, 3, "12/60s");
    let ok = accepted(&spread(&instances, 60).await);
    assert!((9..=12).contains(&ok), "{ok} accepted for a key allowed 12");
}

#[tokio::test]
async fn redis_holds_digests_not_addresses_keys_or_key_ids() {
    let redis = RedisServer::start();
    let (instances, _dirs) = fleet_with_key_rate(&redis, 2, "50/60s");
    spread(&instances, 10).await;
    let held = redis.dump().await;
    assert!(held.len() >= 2, "the address and the key budgets: {held:?}");
    for entry in &held {
        for secret in ["127.0.0.1", "cli-1", KEY, "test-key"] {
            assert!(!entry.contains(secret), "Redis holds {secret:?}: {entry}");
        }
        assert!(entry.starts_with("smcp:rl:"), "{entry}");
    }
}

#[tokio::test]
async fn an_outage_falls_back_to_a_share_of_the_budget_then_shared_budgets_return() {
    let mut redis = RedisServer::start();
    let (instances, _dir) = fleet(&redis, 2, &["--rate-limit", "20"]);
    let fleet = instances[0].state.fleet.clone().expect("a fleet");
    assert_eq!(accepted(&spread(&instances[..1], 4).await), 4);

    redis.stop();
    let during = spread(&instances, 60).await;
    assert_eq!(server_errors(&during), 0, "an outage is never a 5xx");
    // Each instance alone allows 20 / 2; 4 were already counted in Redis, not locally.
    assert_eq!(accepted(&during), 20, "10 per instance while Redis is down");
    assert!(!fleet.link.is_up());
    let fallbacks: u64 = instances
        .iter()
        .filter_map(|h| h.state.fleet.as_ref())
        .map(|f| f.link.stats.fallback_decisions.load(Ordering::Relaxed))
        .sum();
    assert!(
        fallbacks >= 60,
        "every decision of the outage is counted: {fallbacks}"
    );
    assert!(fleet.link.stats.outages.load(Ordering::Relaxed) >= 1);

    redis.restart();
    wait_until_up(&instances).await;
    let trips = fleet.link.stats.round_trips.load(Ordering::Relaxed);
    // The restarted Redis has forgotten the window: the shared budget (20) applies again.
    let after = spread(&instances, 40).await;
    assert_eq!(server_errors(&after), 0);
    let ok = accepted(&after);
    assert!((18..=20).contains(&ok), "{ok} accepted after recovery");
    assert!(fleet.link.stats.round_trips.load(Ordering::Relaxed) > trips);
}

#[tokio::test]
async fn with_deny_an_outage_answers_429_with_a_retry_time_never_5xx() {
    let mut redis = RedisServer::start();
    // Leases of one request: none is left to spend when Redis goes.
    let (instances, _dir) = fleet(
        &redis,
        2,
        &["--redis-fallback", "deny", "--rate-limit", "20"],
    );
    assert_eq!(accepted(&spread(&instances, 2).await), 2);
    redis.stop();
    let during = spread(&instances, 6).await;
    assert!(
        during.iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{during:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_shares_its_lease_requests_and_stays_within_the_budget() {
    let redis = RedisServer::start();
    let (instances, _dir) = fleet(&redis, 3, &["--rate-limit", "300"]);
    let instances = std::sync::Arc::new(instances);
    let burst = (0..600).map(|i| {
        let instances = instances.clone();
        tokio::spawn(async move {
            instances[i % 3]
                .modern("tools/list", json!({}))
                .await
                .status
        })
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(burst)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let ok = accepted(&statuses);
    assert!(
        (270..=300).contains(&ok),
        "{ok} accepted of a budget of 300"
    );
    assert_eq!(server_errors(&statuses), 0);
    let trips: u64 = instances
        .iter()
        .filter_map(|h| h.state.fleet.as_ref())
        .map(|f| f.link.stats.round_trips.load(Ordering::Relaxed))
        .sum();
    // Leases of 10: about 30 to spend the budget, then one per refused client and instance.
    assert!(trips < 120, "{trips} round trips for 600 requests");
}

/// Accepted requests of one client spread over three instances for 2.5 s of real time (a
/// window of 1 s, buckets of 100 ms); the most in any 1 s, and the total.
async fn most_in_one_second(limit: &str) -> (usize, usize) {
    let redis = RedisServer::start();
    let (instances, _dir) = fleet(&redis, 3, &["--rate-limit", limit, "--rate-window", "1"]);
    let start = tokio::time::Instant::now();
    let mut admitted = Vec::new();
    let mut i = 0usize;
    while start.elapsed() < Duration::from_millis(2500) && i < 100_000 {
        let reply = instances[i % 3].modern("tools/list", json!({})).await;
        assert!(!reply.status.is_server_error());
        if reply.status == StatusCode::OK {
            admitted.push(start.elapsed());
        }
        i += 1;
    }
    let worst = admitted
        .iter()
        .map(|t| {
            admitted
                .iter()
                .filter(|u| **u >= *t && **u - *t < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    (worst, admitted.len())
}

/// Redis keeps its own clock, which a paused Tokio clock cannot stop: these run in real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_window_of_w_ever_holds_more_than_the_budget_in_real_time() {
    // Leases of one request.
    let (worst, total) = most_in_one_second("30").await;
    assert!(
        worst <= 33,
        "{worst} admitted within one second; 1.1 x 30 = 33"
    );
    assert!(total >= 60, "only {total} admitted in 2.5 windows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_asked_for_ahead_of_time_keep_the_bound_in_real_time() {
    // Leases of 13, the next asked for when 3 are left.
    let (worst, total) = most_in_one_second("400").await;
    assert!(
        worst <= 440,
        "{worst} admitted within one second; 1.1 x 400 = 440"
    );
    assert!(total >= 800, "only {total} admitted in 2.5 windows");
}
