//! The numeric bounds: body size, timeouts, connections, sessions, streams, tasks and the two
//! rate limits. None may be zero (a zero would mean "refuse everything" or "no bound", and
//! neither is what an operator means).

use std::time::Duration;

use super::ConfigError;
use super::cli::Cli;
use crate::mcp::tasks::TaskLimits;
use crate::security::rate_limit::Policy as RatePolicy;

/// The bounds of a configuration.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_body: usize,
    pub request_timeout: Duration,
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub session_idle: Duration,
    pub max_sessions: usize,
    pub max_sessions_per_key: usize,
    pub max_streams_per_key: usize,
    pub rate: RatePolicy,
    pub auth_failures: RatePolicy,
    pub shutdown_timeout: Duration,
    pub tasks: TaskLimits,
}

impl Bounds {
    /// The bounds the flags give; an error for each one that is zero.
    pub fn from_cli(cli: &Cli) -> Result<Self, Vec<ConfigError>> {
        let zero: Vec<ConfigError> = [
            ("shutdown-timeout", cli.shutdown_timeout),
            ("rate-limit", u64::from(cli.rate_limit)),
            ("rate-window", cli.rate_window),
            ("rate-limit-max-clients", cli.rate_limit_max_clients as u64),
            ("auth-fail-limit", u64::from(cli.auth_fail_limit)),
            ("auth-fail-window", cli.auth_fail_window),
            ("max-connections", cli.max_connections as u64),
            ("header-timeout-secs", cli.header_timeout_secs),
            ("max-body", cli.max_body as u64),
            ("request-timeout-secs", cli.request_timeout_secs),
            ("session-idle-secs", cli.session_idle_secs),
            ("max-sessions", cli.max_sessions as u64),
            ("max-sessions-per-key", cli.max_sessions_per_key as u64),
            ("task-ttl-secs", cli.task_ttl_secs),
            ("max-tasks-per-key", cli.max_tasks_per_key as u64),
            ("max-streams-per-key", cli.max_streams_per_key as u64),
            ("max-connections-per-ip", cli.max_connections_per_ip as u64),
        ]
        .into_iter()
        .filter(|(_, value)| *value == 0)
        .map(|(name, _)| ConfigError::Zero(name))
        .collect();
        if !zero.is_empty() {
            return Err(zero);
        }
        Ok(Self {
            max_body: cli.max_body,
            request_timeout: Duration::from_secs(cli.request_timeout_secs),
            header_timeout: Duration::from_secs(cli.header_timeout_secs),
            max_connections: cli.max_connections,
            max_connections_per_ip: cli.max_connections_per_ip,
            session_idle: Duration::from_secs(cli.session_idle_secs),
            max_sessions: cli.max_sessions,
            max_sessions_per_key: cli.max_sessions_per_key,
            max_streams_per_key: cli.max_streams_per_key,
            rate: RatePolicy {
                limit: cli.rate_limit,
                window: Duration::from_secs(cli.rate_window),
                max_clients: cli.rate_limit_max_clients,
                ipv6_prefix: cli.rate_limit_ipv6_prefix,
            },
            auth_failures: RatePolicy {
                limit: cli.auth_fail_limit,
                window: Duration::from_secs(cli.auth_fail_window),
                max_clients: cli.rate_limit_max_clients,
                ipv6_prefix: cli.rate_limit_ipv6_prefix,
            },
            shutdown_timeout: Duration::from_secs(cli.shutdown_timeout),
            tasks: TaskLimits {
                ttl: Duration::from_secs(cli.task_ttl_secs),
                max_running: cli.max_tasks_per_key,
                // Room for the finished tasks of the unfinished ones' predecessors.
                max_kept: cli.max_tasks_per_key.saturating_mul(16),
                ..TaskLimits::default()
            },
        })
    }
}
