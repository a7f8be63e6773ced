//! Fetching an issuer's metadata and keys: HTTPS (plain HTTP only to a loopback issuer), no
//! redirects, a timeout and a size cap, and how long the answer may be kept.
//!
//! Discovery follows RFC 8414 (`/.well-known/oauth-authorization-server`, then OpenID
//! Connect's `/.well-known/openid-configuration`); the document's `issuer` must equal the
//! configured one exactly, and its `jwks_uri` must be HTTPS (or loopback HTTP for a loopback
//! issuer), so a document cannot point the server at an address of its choosing.

use std::time::Duration;

use reqwest::Url;

/// The longest a fetch may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest metadata document or JWKS read.
pub const MAX_BODY: usize = 512 * 1024;
/// How long keys are kept when the answer does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// Keys are kept at least this long, whatever the answer says (no refetch storm)...
pub const TTL_FLOOR: Duration = Duration::from_secs(60);
/// ...and at most this long (a rotation is picked up within a day even without a miss).
pub const TTL_CEILING: Duration = Duration::from_secs(24 * 3600);

/// Why a fetch failed (for the log; clients are only told the issuer is unavailable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("not an https URL (plain http is allowed for loopback issuers only)")]
    NotHttps,
    #[error("the request failed: {0}")]
    Request(String),
    #[error("answered {0}")]
    Status(u16),
    #[error("the answer is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("the answer is not what was expected: {0}")]
    Invalid(String),
    #[error("the metadata names issuer {found:?}, not {expected:?}")]
    IssuerMismatch { expected: String, found: String },
}

/// Whether `url` may be fetched: https, or http to a loopback host.
pub fn allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

/// How long an answer may be kept, from its `Cache-Control` (`max-age`; `no-store` and
/// `no-cache` mean the floor), within [`TTL_FLOOR`] and [`TTL_CEILING`].
pub fn ttl(cache_control: Option<&str>) -> Duration {
    let Some(value) = cache_control else {
        return DEFAULT_TTL;
    };
    let mut ttl = DEFAULT_TTL;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return TTL_FLOOR;
        }
        if let Some(secs) = lower.strip_prefix("max-age=")
            && let Ok(secs) = secs.trim_matches('"').parse::<u64>()
        {
            ttl = Duration::from_secs(secs);
        }
    }
    ttl.clamp(TTL_FLOOR, TTL_CEILING)
}

/// The one HTTP client of the verifier.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new() -> Result<Self, FetchError> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .map(|client| Self { client })
            .map_err(|e| FetchError::Request(e.to_string()))
    }

    /// GETs `url`: its body (at most [`MAX_BODY`]) and how long it may be kept.
    pub async fn get(&self, url: &Url) -> Result<(Vec<u8>, Duration), FetchError> {
        if !allowed(url) {
            return Err(FetchError::NotHttps);
        }
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FetchError::Request(without_url(&e)))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let keep = ttl(response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()));
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Request(without_url(&e)))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, keep))
    }

    /// The JWKS URL of `issuer`, from its metadata (RFC 8414, then OpenID Connect discovery).
    pub async fn jwks_uri(&self, issuer: &Url) -> Result<Url, FetchError> {
        let mut last = FetchError::Invalid("no metadata".into());
        for suffix in ["oauth-authorization-server", "openid-configuration"] {
            let url = well_known(issuer, suffix)?;
            match self.get(&url).await {
                Ok((body, _)) => return jwks_uri_of(issuer, &body),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// `https://host/.well-known/<suffix>` for an issuer without a path; for one with a path,
/// RFC 8414's form (`/.well-known/<suffix>/path`) for the OAuth document and OpenID's
/// (`/path/.well-known/openid-configuration`) for the other.
fn well_known(issuer: &Url, suffix: &str) -> Result<Url, FetchError> {
    let path = issuer.path().trim_end_matches('/');
    let joined = if path.is_empty() {
        format!("/.well-known/{suffix}")
    } else if suffix == "openid-configuration" {
        format!("{path}/.well-known/{suffix}")
    } else {
        format!("/.well-known/{suffix}{path}")
    };
    let mut url = issuer.clone();
    url.set_path(&joined);
    url.set_query(None);
    Ok(url)
}

/// The `jwks_uri` of a metadata document, checked against `issuer`.
fn jwks_uri_of(issuer: &Url, body: &[u8]) -> Result<Url, FetchError> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        issuer: String,
        jwks_uri: Option<String>,
    }
    let metadata: Metadata =
        serde_json::from_slice(body).map_err(|e| FetchError::Invalid(e.to_string()))?;
    if metadata.issuer != issuer.as_str()
        && metadata.issuer != issuer.as_str().trim_end_matches('/')
    {
        return Err(FetchError::IssuerMismatch {
            expected: issuer.to_string(),
            found: metadata.issuer.chars().take(200).collect(),
        });
    }
    let uri = metadata
        .jwks_uri
        .ok_or_else(|| FetchError::Invalid("no jwks_uri".into()))?;
    let uri = Url::parse(&uri).map_err(|e| FetchError::Invalid(e.to_string()))?;
    if !allowed(&uri) {
        return Err(FetchError::NotHttps);
    }
    Ok(uri)
}

/// A reqwest error's text without the URL (it may carry a query the operator configured).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirected (redirects are not followed)"
    } else {
        "failed"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn only_https_or_loopback_http_is_fetched() {
        assert!(allowed(&url("https://idp.example/jwks")));
        assert!(allowed(&url("http://127.0.0.1:8080/jwks")));
        assert!(allowed(&url("http://[::1]/jwks")));
        assert!(allowed(&url("http://localhost/jwks")));
        assert!(!allowed(&url("http://idp.example/jwks")));
        assert!(!allowed(&url("http://10.0.0.1/jwks")));
        assert!(!allowed(&url("file:///etc/passwd")));
    }

    #[test]
    fn keys_are_kept_as_long_as_the_answer_says_within_a_floor_and_a_ceiling() {
        assert_eq!(ttl(None), DEFAULT_TTL);
        assert_eq!(ttl(Some("public, max-age=3600")), Duration::from_secs(3600));
        assert_eq!(ttl(Some("max-age=5")), TTL_FLOOR);
        assert_eq!(ttl(Some("max-age=99999999")), TTL_CEILING);
        assert_eq!(ttl(Some("no-store")), TTL_FLOOR);
        assert_eq!(ttl(Some("max-age=junk")), DEFAULT_TTL);
    }

    #[test]
    fn well_known_paths_follow_rfc_8414_and_openid() {
        let root = url("https://idp.example");
        assert_eq!(
            well_known(&root, "oauth-authorization-server")
                .expect("url")
                .as_str(),
            "https://idp.example/.well-known/oauth-authorization-server"
        );
        let tenant = url("https://idp.example/realms/acme");
        assert_eq!(
            well_known(&tenant, "oauth-authorization-server")
                .expect("url")
                .as_str(),
            "https://idp.example/.well-known/oauth-authorization-server/realms/acme"
        );
        assert_eq!(
            well_known(&tenant, "openid-configuration")
                .expect("url")
                .as_str(),
            "https://idp.example/realms/acme/.well-known/openid-configuration"
        );
    }

    #[test]
    fn metadata_must_name_the_issuer_and_an_https_jwks() {
        let issuer = url("https://idp.example/realms/acme");
        let ok = br#"{"issuer":"https://idp.example/realms/acme","jwks_uri":"https://idp.example/certs"}"#;
        assert_eq!(
            jwks_uri_of(&issuer, ok).expect("valid").as_str(),
            "https://idp.example/certs"
        );
        let other = br#"{"issuer":"https://evil.example","jwks_uri":"https://evil.example/certs"}"#;
        assert!(matches!(
            jwks_uri_of(&issuer, other),
            Err(FetchError::IssuerMismatch { .. })
        ));
        let plain =
            br#"{"issuer":"https://idp.example/realms/acme","jwks_uri":"http://10.0.0.1/certs"}"#;
        assert_eq!(jwks_uri_of(&issuer, plain), Err(FetchError::NotHttps));
    }
}
