//! The defences in front of the protocol. Each policy is a plain type with its own tests; its
//! [`RequestPolicy`](crate::policy::RequestPolicy) is a thin adapter, composed in
//! [`crate::app::router`].

pub mod auth;
pub mod client_ip;
pub mod connections;
pub mod cors;
pub mod key_policy;
pub mod oauth;
pub mod origin;
pub mod principal;
pub mod rate_limit;
pub mod revocation;
