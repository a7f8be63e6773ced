//! Prometheus metrics, and the background sampler of memory and CPU.
//!
//! Crate choice: `prometheus-client`, the Prometheus project's own Rust client. It keeps metrics
//! in an explicit registry (no global recorder), so each server instance (and each test) has
//! its own, and it encodes the OpenMetrics text format `/metrics` serves.
//!
//! Label values come only from closed sets (the MCP methods this server knows, the registered
//! tool names, fixed outcome and event words); anything a client invents is counted as
//! `other`, so a client cannot grow the metric families without bound.
//!
//! Memory and CPU are read by a background task every [`SAMPLE_EVERY`] (never per request),
//! which also logs a summary line every [`SUMMARY_EVERY`].

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::gauges::GATEWAY_GAUGES;
pub use super::gauges::{FleetFigures, GatewayFigures, Gauges};
use crate::mcp::method::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How often memory and CPU are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How often the summary line is logged.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// The method labels: every known MCP method, `response` (a client's answer), `none` (not an
/// MCP message), and last `other`, which every other method counts as.
pub fn method_labels() -> impl Iterator<Item = &'static str> + Clone {
    static LABELS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        Method::KNOWN
            .iter()
            .filter_map(Method::known_name)
            .chain(["response", "none", "other"])
            .collect()
    });
    LABELS.iter().copied()
}

/// A method label from a closed set.
pub fn method_label(method: Option<&str>) -> &'static str {
    let method = method.unwrap_or("none");
    method_labels().find(|l| *l == method).unwrap_or("other")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    outcome: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.1 ms .. ~1.6 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    tool_calls: Family<ToolLabels, Counter>,
    security_events: Family<EventLabels, Counter>,
    pub connections_open: Gauge,
    sessions_live: Gauge,
    tasks_kept: Gauge,
    rate_limit_clients: Gauge,
    audit_dropped: Gauge,
    /// Redis up, round trips, outages, fallback decisions (a fleet's instances only).
    fleet: [Gauge; 4],
    /// A gateway's upstream processes: live, started, exited, definitions changed.
    gateway: [Gauge; 4],
    resident_bytes: Gauge,
    cpu_seconds: Gauge<f64, AtomicU64>,
    tools: Vec<String>,
    /// The request series' handles, taken from their families at first use: the family
    /// lookup (a lock and a hash of the labels) is paid once per series, not per request.
    request_series: Box<[OnceLock<Counter>]>,
    latency_series: Box<[OnceLock<Histogram>]>,
}

/// The outcome labels (`audit::outcome`).
const OUTCOMES: [&str; 6] = [
    "ok",
    "unauthorized",
    "forbidden_origin",
    "rate_limited",
    "invalid",
    "error",
];
/// How many method labels there are (see [`method_labels`]).
const METHOD_LABELS: usize = Method::KNOWN.len() + 3;

fn method_index(method: &str) -> Option<usize> {
    method_labels().position(|m| m == method)
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A registry with every family; `tools` are the tool names that may appear as labels.
    pub fn new(tools: Vec<String>) -> Self {
        let mut registry = Registry::with_prefix("mcp");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by outcome and MCP method",
            requests.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Request latency by MCP method",
            latency.clone(),
        );
        let tool_calls = Family::<ToolLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls by tool and result",
            tool_calls.clone(),
        );
        let security_events = Family::<EventLabels, Counter>::default();
        registry.register(
            "security_events",
            "Security events: auth_failed, rate_limited, forbidden_origin, oversized_body, sandbox_escape",
            security_events.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Open TCP connections",
            connections_open.clone(),
        );
        let sessions_live = Gauge::default();
        registry.register(
            "sessions_live",
            "Live 2025-era sessions",
            sessions_live.clone(),
        );
        let tasks_kept = Gauge::default();
        registry.register(
            "tasks_kept",
            "2026-07-28 task records held (unfinished and finished, until their TTL)",
            tasks_kept.clone(),
        );
        let rate_limit_clients = Gauge::default();
        registry.register(
            "rate_limit_tracked_clients",
            "Clients tracked by the rate limiter",
            rate_limit_clients.clone(),
        );
        let audit_dropped = Gauge::default();
        registry.register(
            "audit_dropped_events",
            "Audit events dropped because the writer fell behind",
            audit_dropped.clone(),
        );
        let fleet: [Gauge; 4] = Default::default();
        for (gauge, (name, help)) in fleet.iter().zip([
            (
                "fleet_redis_up",
                "1 while the fleet's Redis answers (an instance of a fleet only)",
            ),
            (
                "fleet_redis_round_trips",
                "Commands sent to the fleet's Redis since start",
            ),
            (
                "fleet_redis_outages",
                "Times the fleet's Redis stopped answering since start",
            ),
            (
                "fleet_fallback_decisions",
                "Rate-limit decisions taken without Redis (--redis-fallback) since start",
            ),
        ]) {
            registry.register(name, help, gauge.clone());
        }
        let gateway: [Gauge; 4] = Default::default();
        for (gauge, (name, help)) in gateway.iter().zip(GATEWAY_GAUGES) {
            registry.register(name, help, gauge.clone());
        }
        let resident_bytes = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of this process",
            resident_bytes.clone(),
        );
        let cpu_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "CPU time used by this process",
            cpu_seconds.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            tool_calls,
            security_events,
            connections_open,
            sessions_live,
            tasks_kept,
            rate_limit_clients,
            audit_dropped,
            fleet,
            gateway,
            resident_bytes,
            cpu_seconds,
            tools,
            request_series: (0..OUTCOMES.len() * METHOD_LABELS)
                .map(|_| OnceLock::new())
                .collect(),
            latency_series: (0..METHOD_LABELS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Counts one finished request.
    pub fn request(&self, outcome: &'static str, method: &'static str, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let o = OUTCOMES.iter().position(|o| *o == outcome);
        let (Some(o), Some(m)) = (o, method_index(method)) else {
            // Not a label of the closed sets: no cached series.
            self.requests
                .get_or_create(&RequestLabels { outcome, method })
                .inc();
            self.latency
                .get_or_create(&MethodLabels { method })
                .observe(seconds);
            return;
        };
        self.request_series[o * METHOD_LABELS + m]
            .get_or_init(|| {
                self.requests
                    .get_or_create(&RequestLabels { outcome, method })
                    .clone()
            })
            .inc();
        self.latency_series[m]
            .get_or_init(|| self.latency.get_or_create(&MethodLabels { method }).clone())
            .observe(seconds);
    }

    /// Counts one tool call (`error`: the result had `isError`).
    pub fn tool_call(&self, tool: &str, error: bool) {
        let tool = if self.tools.iter().any(|t| t == tool) {
            tool.to_owned()
        } else {
            "other".to_owned()
        };
        let result = if error { "error" } else { "ok" };
        self.tool_calls
            .get_or_create(&ToolLabels { tool, result })
            .inc();
    }

    /// Counts one security event.
    pub fn security_event(&self, event: &'static str) {
        self.security_events
            .get_or_create(&EventLabels { event })
            .inc();
    }

    /// Sets the figures read at scrape time.
    pub fn set_gauges(&self, gauges: Gauges) {
        self.sessions_live
            .set(i64::try_from(gauges.sessions).unwrap_or(i64::MAX));
        self.tasks_kept
            .set(i64::try_from(gauges.tasks).unwrap_or(i64::MAX));
        self.rate_limit_clients
            .set(i64::try_from(gauges.rate_limit_clients).unwrap_or(i64::MAX));
        self.audit_dropped
            .set(i64::try_from(gauges.audit_dropped).unwrap_or(i64::MAX));
        if let Some(f) = gauges.fleet {
            let values = [
                u64::from(f.redis_up),
                f.round_trips,
                f.outages,
                f.fallback_decisions,
            ];
            for (gauge, value) in self.fleet.iter().zip(values) {
                gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        if let Some(g) = gauges.gateway {
            let values = [g.live, g.starts, g.exits, g.definitions_changed];
            for (gauge, value) in self.gateway.iter().zip(values) {
                gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
    }

    pub fn resident_bytes(&self) -> i64 {
        self.resident_bytes.get()
    }

    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_seconds.get()
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Reads this process's memory and CPU into the gauges.
    pub fn sample_process(&self, sys: &mut sysinfo::System) {
        let Ok(pid) = sysinfo::get_current_pid() else {
            return;
        };
        sys.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing()
                .with_memory()
                .with_cpu(),
        );
        if let Some(p) = sys.process(pid) {
            self.resident_bytes
                .set(i64::try_from(p.memory()).unwrap_or(i64::MAX));
            self.cpu_seconds
                .set(p.accumulated_cpu_time() as f64 / 1000.0);
        }
    }
}

/// Samples memory and CPU every [`SAMPLE_EVERY`] and logs a summary every [`SUMMARY_EVERY`];
/// `extra` supplies the figures of the other parts (sessions, rate-limit clients, audit drops).
pub fn spawn_sampler(
    metrics: Arc<Metrics>,
    gauges: impl Fn() -> Gauges + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut sys) = sysinfo::System::new() else {
            return;
        };
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        let per_summary = (SUMMARY_EVERY.as_secs() / SAMPLE_EVERY.as_secs()).max(1);
        let mut n: u64 = 0;
        loop {
            ticker.tick().await;
            metrics.sample_process(&mut sys);
            let figures = gauges();
            metrics.set_gauges(figures);
            if n.is_multiple_of(per_summary) {
                tracing::info!(
                    resident_bytes = metrics.resident_bytes(),
                    cpu_seconds = metrics.cpu_seconds(),
                    connections = metrics.connections_open.get(),
                    sessions = figures.sessions,
                    tasks = figures.tasks,
                    rate_limit_clients = figures.rate_limit_clients,
                    audit_dropped = figures.audit_dropped,
                    redis_up = figures.fleet.map(|f| f.redis_up),
                    redis_fallback_decisions = figures.fleet.map(|f| f.fallback_decisions),
                    "resources"
                );
            }
            n += 1;
        }
    })
}

/// Counts an open connection while alive.
pub struct ConnectionGuard(Gauge<i64, AtomicI64>);

impl ConnectionGuard {
    pub fn new(gauge: &Gauge<i64, AtomicI64>) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_clients_cannot_grow_the_families() {
        let m = Metrics::new(vec!["read_file".into()]);
        for i in 0..1000 {
            m.request(
                "ok",
                method_label(Some(&format!("made/up/{i}"))),
                Duration::from_millis(1),
            );
            m.tool_call(&format!("tool{i}"), false);
        }
        let text = m.render();
        assert!(
            text.contains("mcp_requests_total{outcome=\"ok\",method=\"other\"} 1000"),
            "{text}"
        );
        assert!(
            text.contains("mcp_tool_calls_total{tool=\"other\",result=\"ok\"} 1000"),
            "{text}"
        );
        assert!(!text.contains("made/up"));
    }

    #[test]
    fn every_request_series_counts_into_its_own_labels() {
        let m = Metrics::new(vec![]);
        let methods = method_labels();
        for (i, method) in methods.clone().enumerate() {
            for outcome in OUTCOMES {
                for _ in 0..=i {
                    m.request(outcome, method, Duration::from_millis(1));
                }
            }
        }
        // a label outside the closed sets still counts (without a cached series)
        m.request("ok", "elsewhere", Duration::from_millis(1));
        let text = m.render();
        for (i, method) in methods.enumerate() {
            for outcome in OUTCOMES {
                let line = format!(
                    "mcp_requests_total{{outcome=\"{outcome}\",method=\"{method}\"}} {}",
                    i + 1
                );
                assert!(text.contains(&line), "{line}");
            }
            let count = format!(
                "mcp_request_duration_seconds_count{{method=\"{method}\"}} {}",
                (i + 1) * OUTCOMES.len()
            );
            assert!(text.contains(&count), "{count}");
        }
        assert!(text.contains("mcp_requests_total{outcome=\"ok\",method=\"elsewhere\"} 1"));
    }

    #[test]
    fn process_figures_are_sampled() {
        let m = Metrics::new(vec![]);
        let mut sys = sysinfo::System::new().expect("sysinfo");
        m.sample_process(&mut sys);
        assert!(m.resident_bytes() > 0);
        let text = m.render();
        assert!(text.contains("mcp_process_resident_memory_bytes"));
    }
}
