//! What the server tells its operator: one audit event per request, security events, and
//! Prometheus metrics with memory and CPU figures.

pub mod audit;
pub mod gauges;
pub mod handle;
pub mod logging;
pub mod metrics;
pub mod security;
pub mod summary;

pub use handle::Observability;
