//! The figures other parts of the server hold (sessions, tasks, the rate limiter, the audit
//! queue, a fleet's Redis link, a gateway's upstreams), read by the metrics at scrape and
//! sample time.

/// The gateway's gauges: name and help, in the order of [`GatewayFigures`].
pub const GATEWAY_GAUGES: [(&str, &str); 4] = [
    (
        "gateway_upstreams_live",
        "Upstream processes running (a gateway only)",
    ),
    (
        "gateway_upstream_starts",
        "Upstream processes started since start",
    ),
    (
        "gateway_upstream_exits",
        "Upstream processes that exited on their own since start",
    ),
    (
        "gateway_tool_definition_changes",
        "Upstream tools refused because their definition differs from its pin, since start",
    ),
];

/// The figures other parts of the server hold, read at scrape and sample time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauges {
    /// Live 2025-era sessions.
    pub sessions: usize,
    /// Task records held (2026-07-28 tasks).
    pub tasks: usize,
    /// Clients the request rate limiter tracks.
    pub rate_limit_clients: usize,
    /// Audit events dropped since start.
    pub audit_dropped: u64,
    /// The fleet's Redis link, if the instance is one of a fleet.
    pub fleet: Option<FleetFigures>,
    /// The upstream processes, if the instance is a gateway.
    pub gateway: Option<GatewayFigures>,
}

/// The figures of a fleet's Redis link (counts since start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetFigures {
    pub redis_up: bool,
    pub round_trips: u64,
    pub outages: u64,
    pub fallback_decisions: u64,
}

/// A gateway's upstream processes (counts since start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayFigures {
    pub live: u64,
    pub starts: u64,
    pub exits: u64,
    pub definitions_changed: u64,
}
