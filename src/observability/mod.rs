//! What the server tells its operator: one audit event per request.

pub mod audit;
