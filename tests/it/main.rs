//! Integration tests: the real router (tower `oneshot`), real sockets, and the built binary.

mod auth;
mod binary;
mod legacy;
mod modern;
mod sandbox;
mod sessions;
mod socket;
mod support;
mod transport;
