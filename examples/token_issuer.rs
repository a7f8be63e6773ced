//! A throwaway identity provider for the benchmarks: an EC P-256 key made at start, its
//! RFC 8414 metadata and JWKS on a loopback port, and one access token for AUDIENCE (valid an
//! hour) written to TOKEN_FILE. Prints `listening on http://127.0.0.1:PORT/` and serves until
//! killed.
//!
//!     cargo run --example token_issuer -- AUDIENCE TOKEN_FILE

use axum::Router;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(audience), Some(token_file)) = (args.next(), args.next()) else {
        eprintln!("usage: token_issuer AUDIENCE TOKEN_FILE");
        std::process::exit(64);
    };
    let pair = rcgen::KeyPair::generate().map_err(std::io::Error::other)?;
    let encoding =
        EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).map_err(std::io::Error::other)?;
    let mut public =
        Jwk::from_encoding_key(&encoding, Algorithm::ES256).map_err(std::io::Error::other)?;
    public.common.key_id = Some("bench-1".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer = format!("http://{}", listener.local_addr()?);
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("bench-1".into());
    let claims = json!({ "iss": issuer, "sub": "bench", "aud": audience, "iat": now,
        "exp": now + 3600, "scope": "mcp:tools" });
    let token = jsonwebtoken::encode(&header, &claims, &encoding).map_err(std::io::Error::other)?;
    std::fs::write(token_file, token)?;
    let metadata = json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks") });
    let keys = JwkSet { keys: vec![public] };
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { axum::Json(metadata) }),
        )
        .route("/jwks", get(move || async move { axum::Json(keys) }));
    println!("listening on {issuer}/");
    axum::serve(listener, app).await
}
