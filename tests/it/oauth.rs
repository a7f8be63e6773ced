//! Access tokens from an identity provider (`security::oauth`): an issuer of our own on
//! loopback (keys made here, metadata and JWKS served by a small axum app) and every way a
//! token can be wrong.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Url;
use secure_mcp_server::security::oauth::{Fetcher, JwksSource, TokenError, TokenVerifier};
use serde_json::{Value, json};

pub const AUDIENCE: &str = "https://mcp.example.com/mcp";

/// A signing key of the test issuer.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: Jwk,
}

impl SigningKey {
    pub fn new(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate().expect("an EC P-256 key");
        let encoding = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem");
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::ES256).expect("jwk");
        public.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            encoding,
            public,
        }
    }
}

#[derive(Default)]
struct IssuerState {
    base: Mutex<String>,
    keys: Mutex<Vec<Jwk>>,
    down: AtomicBool,
    jwks_fetches: AtomicU64,
    /// Opaque tokens the introspection endpoint knows, with their claims.
    opaque: Mutex<Vec<(String, Value)>>,
    introspections: AtomicU64,
}

/// The client this server is at the test issuer's introspection endpoint.
pub const CLIENT: (&str, &str) = ("mcp-server", "client-secret-Hs5dG1aK9eU7oI3rT6");

/// The test issuer: RFC 8414 metadata and a JWKS on a loopback port.
pub struct Issuer {
    pub url: String,
    state: Arc<IssuerState>,
}

impl Issuer {
    pub async fn start(keys: &[&SigningKey]) -> Self {
        async fn metadata(State(s): State<Arc<IssuerState>>) -> impl IntoResponse {
            let base = s.base.lock().expect("lock").clone();
            axum::Json(json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") }))
        }
        async fn jwks(State(s): State<Arc<IssuerState>>) -> axum::response::Response {
            s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            if s.down.load(Ordering::SeqCst) {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            let set = JwkSet {
                keys: s.keys.lock().expect("lock").clone(),
            };
            ([(header::CACHE_CONTROL, "max-age=300")], axum::Json(set)).into_response()
        }
        async fn introspect(
            State(s): State<Arc<IssuerState>>,
            headers: axum::http::HeaderMap,
            body: String,
        ) -> axum::response::Response {
            use base64::Engine;
            s.introspections.fetch_add(1, Ordering::SeqCst);
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", CLIENT.0, CLIENT.1))
            );
            if headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                != Some(&expected)
            {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            let token = url::form_urlencoded::parse(body.as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let known = s
                .opaque
                .lock()
                .expect("lock")
                .iter()
                .find(|(t, _)| *t == token)
                .map(|(_, c)| c.clone());
            match known {
                Some(mut claims) => {
                    claims["active"] = json!(true);
                    axum::Json(claims).into_response()
                }
                None => axum::Json(json!({ "active": false })).into_response(),
            }
        }
        let state = Arc::new(IssuerState::default());
        *state.keys.lock().expect("lock") = keys.iter().map(|k| k.public.clone()).collect();
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks", get(jwks))
            .route("/introspect", axum::routing::post(introspect))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}");
        *state.base.lock().expect("lock") = url.clone();
        Self { url, state }
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.state.keys.lock().expect("lock") = keys.iter().map(|k| k.public.clone()).collect();
    }

    /// Makes the introspection endpoint vouch for `token` with `claims`.
    pub fn knows_opaque(&self, token: &str, claims: Value) {
        self.state
            .opaque
            .lock()
            .expect("lock")
            .push((token.to_owned(), claims));
    }

    pub fn introspections(&self) -> u64 {
        self.state.introspections.load(Ordering::SeqCst)
    }

    fn fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    fn verifier(&self) -> TokenVerifier {
        let url = Url::parse(&self.url).expect("url");
        TokenVerifier::new(
            vec![(url, JwksSource::Discover)],
            AUDIENCE.to_owned(),
            &Fetcher::new().expect("client"),
        )
    }

    /// Claims that pass, to be spoilt one at a time.
    pub fn claims(&self) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({ "iss": self.url, "sub": "user-42", "aud": [AUDIENCE, "other"],
                "exp": now + 300, "iat": now, "scope": "files:read tools:call" })
    }
}

pub fn sign(key: &SigningKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_valid_token_names_its_issuer_subject_and_scopes() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let verified = issuer
        .verifier()
        .verify(&sign(&key, &issuer.claims()))
        .await
        .expect("valid");
    assert_eq!(verified.issuer, issuer.url);
    assert_eq!(verified.subject, "user-42");
    assert_eq!(verified.scopes, vec!["files:read", "tools:call"]);
}

#[tokio::test]
async fn every_wrong_claim_is_refused_with_what_to_fix() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    let now = jsonwebtoken::get_current_timestamp();
    let spoilt = |field: &str, value: Value| {
        let mut claims = issuer.claims();
        claims[field] = value;
        claims
    };
    let without = |field: &str| {
        let mut claims = issuer.claims();
        claims.as_object_mut().expect("object").remove(field);
        claims
    };
    for (claims, expected) in [
        (spoilt("exp", json!(now - 120)), TokenError::Expired),
        (spoilt("nbf", json!(now + 600)), TokenError::NotYetValid),
        (
            spoilt("aud", json!("https://elsewhere.example/mcp")),
            TokenError::WrongAudience,
        ),
        (
            spoilt("iss", json!("https://unknown.example")),
            TokenError::UnknownIssuer,
        ),
        (without("exp"), TokenError::MissingClaim),
        (without("sub"), TokenError::MissingClaim),
        (without("aud"), TokenError::MissingClaim),
        (spoilt("nonce", json!("n-1")), TokenError::NotAnAccessToken),
        (
            spoilt("sub", json!("alice\nforged log line")),
            TokenError::Malformed,
        ),
    ] {
        let token = sign(&key, &claims);
        assert_eq!(verifier.verify(&token).await, Err(expected), "{claims}");
        let message = expected.to_string();
        assert!(!message.contains(&token) && !message.contains("user-42"));
    }
    // Within the leeway, a just-expired token still passes.
    let token = sign(&key, &spoilt("exp", json!(now - 5)));
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    let good = sign(&key, &issuer.claims());
    let (signed, signature) = good.rsplit_once('.').expect("three parts");

    // Another key's signature under this key's kid.
    let stranger = SigningKey {
        kid: "k1".into(),
        ..SigningKey::new("k1")
    };
    let forged = sign(&stranger, &issuer.claims());
    assert_eq!(
        verifier.verify(&forged).await,
        Err(TokenError::BadSignature)
    );

    // The claims changed under the original signature.
    let mut claims = issuer.claims();
    claims["sub"] = json!("admin");
    let (header, _) = signed.split_once('.').expect("parts");
    let swapped = format!(
        "{header}.{}.{signature}",
        b64(claims.to_string().as_bytes())
    );
    assert_eq!(
        verifier.verify(&swapped).await,
        Err(TokenError::BadSignature)
    );

    // alg: none, unsigned.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        b64(issuer.claims().to_string().as_bytes())
    );
    assert_eq!(verifier.verify(&none).await, Err(TokenError::Malformed));

    // HS256 keyed with the issuer's public key (the classic confusion).
    let public = serde_json::to_vec(&key.public).expect("json");
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &hs,
        &issuer.claims(),
        &EncodingKey::from_secret(&public).expect("a secret"),
    )
    .expect("sign");
    assert_eq!(
        verifier.verify(&confused).await,
        Err(TokenError::AlgorithmNotAllowed)
    );

    // Not a JWT, an ID token's type, and no kid at all.
    assert_eq!(verifier.verify("abc.def").await, Err(TokenError::Malformed));
    let mut id_token = Header::new(Algorithm::ES256);
    id_token.kid = Some("k1".into());
    id_token.typ = Some("id_token+jwt".into());
    let token = jsonwebtoken::encode(&id_token, &issuer.claims(), &key.encoding).expect("sign");
    assert_eq!(
        verifier.verify(&token).await,
        Err(TokenError::NotAnAccessToken)
    );
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &issuer.claims(),
        &key.encoding,
    )
    .expect("sign");
    assert_eq!(verifier.verify(&token).await, Err(TokenError::UnknownKey));
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_bogus_kids_cannot_hammer_the_issuer() {
    let old = SigningKey::new("k1");
    let issuer = Issuer::start(&[&old]).await;
    let verifier = issuer.verifier();
    assert!(verifier.verify(&sign(&old, &issuer.claims())).await.is_ok());
    assert_eq!(issuer.fetches(), 1);

    // The issuer rotates: the first token of the new key triggers one refresh.
    let new = SigningKey::new("k2");
    issuer.publish(&[&new]);
    let verified = verifier.verify(&sign(&new, &issuer.claims())).await;
    assert!(verified.is_ok(), "{verified:?}");
    assert_eq!(issuer.fetches(), 2);

    // A flood of invented kids: no more fetches within the refresh interval.
    for i in 0..50 {
        let bogus = SigningKey::new(&format!("bogus-{i}"));
        assert_eq!(
            verifier.verify(&sign(&bogus, &issuer.claims())).await,
            Err(TokenError::UnknownKey)
        );
    }
    assert_eq!(
        issuer.fetches(),
        2,
        "unknown kids are refreshed at most once per 10 s"
    );
}

#[tokio::test]
async fn an_issuer_that_goes_down_keeps_its_keys_and_one_never_reached_fails_closed() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    assert!(verifier.verify(&sign(&key, &issuer.claims())).await.is_ok());
    issuer.state.down.store(true, Ordering::SeqCst);
    assert!(
        verifier.verify(&sign(&key, &issuer.claims())).await.is_ok(),
        "cached keys keep working"
    );

    let cold = Issuer::start(&[&key]).await;
    cold.state.down.store(true, Ordering::SeqCst);
    let verifier = cold.verifier();
    assert_eq!(
        verifier.verify(&sign(&key, &cold.claims())).await,
        Err(TokenError::IssuerUnavailable)
    );
    // ... and does not hammer it either.
    let fetches = cold.fetches();
    for _ in 0..20 {
        let _ = verifier.verify(&sign(&key, &cold.claims())).await;
    }
    assert_eq!(cold.fetches(), fetches);
}

#[tokio::test]
async fn a_verified_token_is_remembered_by_its_digest_and_a_refused_one_is_not() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    let token = sign(&key, &issuer.claims());
    let first = verifier.verify(&token).await.expect("valid");
    assert_eq!(verifier.verify(&token).await, Ok(first));
    assert_eq!(
        verifier.checks(),
        1,
        "the second use costs no signature check"
    );
    assert_eq!(verifier.remembered(), 1);
    // Only that exact token: a changed signature is checked, refused, and not remembered.
    let (signed, _) = token.rsplit_once('.').expect("parts");
    let forged = format!("{signed}.{}", "A".repeat(86));
    for _ in 0..2 {
        assert_eq!(
            verifier.verify(&forged).await,
            Err(TokenError::BadSignature)
        );
    }
    assert_eq!(verifier.checks(), 3);
    assert_eq!(verifier.remembered(), 1);
}

#[tokio::test]
async fn the_memory_of_verified_tokens_is_bounded() {
    use secure_mcp_server::security::oauth::REMEMBERED;
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    let mut claims = issuer.claims();
    for i in 0..=REMEMBERED {
        claims["jti"] = json!(i);
        assert!(verifier.verify(&sign(&key, &claims)).await.is_ok());
        assert!(verifier.remembered() <= REMEMBERED);
    }
    // Full, it dropped everything and kept the newest one.
    assert_eq!(verifier.remembered(), 1);
}
