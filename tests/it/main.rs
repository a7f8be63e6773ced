//! Integration tests: the real router (tower `oneshot`), real sockets, and the built binary.

mod auth;
mod binary;
mod check;
mod fleet;
mod hardening;
mod keys;
mod legacy;
mod limits;
mod modern;
mod oauth;
mod oauth_server;
mod operations;
mod origin;
mod policy;
mod rate_limit;
mod redis_server;
mod sandbox;
mod sessions;
mod shared_budget;
mod shared_sessions;
mod shared_tasks;
mod socket;
mod streams;
mod support;
mod tasks;
mod transport;
