//! The only reader of the client's address.
//!
//! The client is the TCP peer, as axum's `ConnectInfo` reports it. Forwarded headers
//! (`X-Forwarded-For`, `Forwarded`) are not read: a client can write anything there.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::Extensions;

/// The client's address, when the request came in over a socket.
pub fn client_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_peer_address_and_nothing_else() {
        let mut ext = Extensions::new();
        assert_eq!(client_ip(&ext), None);
        ext.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 9], 4000))));
        assert_eq!(client_ip(&ext), Some(IpAddr::from([127, 0, 0, 9])));
    }
}
