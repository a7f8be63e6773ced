//! The diagnostic log: to stderr, as text (colours only on a terminal) or JSON lines, filtered
//! by `MCP_LOG` (`info` by default). The audit trail has its own sink ([`super::audit`]).

use crate::config::cli::LogFormat;

/// Installs the process's log subscriber.
pub fn init(format: LogFormat) {
    let filter =
        || tracing_subscriber::EnvFilter::try_from_env("MCP_LOG").unwrap_or_else(|_| "info".into());
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
    }
}
