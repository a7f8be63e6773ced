//! [`Introspector`]: opaque (non-JWT) access tokens, checked with the issuer's RFC 7662
//! introspection endpoint (`--oauth-introspection-url`), as this server's own OAuth client
//! (`--oauth-client-id`, the secret in `MCP_OAUTH_CLIENT_SECRET`, never on a command line).
//!
//! An answer is accepted only if it says `active: true`, names a configured issuer (`iss`) and
//! this server in `aud`, and carries `sub` and an `exp` still ahead: a token the endpoint
//! vouches for without saying for whom or until when is refused. The request goes over https
//! (http only to loopback), without redirects, within 5 s and 512 KiB, and at most
//! [`IN_FLIGHT`] at once: a flood of invented opaque tokens meets the per-address limit on
//! failed authentications first, and cannot have the server send more than that many requests
//! to the endpoint at a time. An accepted answer is remembered (with JWTs, by the token's
//! digest) for at most [`super::REMEMBER_INTROSPECTED`], never past its `exp`.

use std::sync::Arc;

use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::fetch::{MAX_BODY, TIMEOUT, allowed};
use super::{TokenError, VerifiedToken};

/// Introspection requests in flight at most.
pub const IN_FLIGHT: usize = 16;

/// How to reach the endpoint, and as whom.
#[derive(Clone, PartialEq, Eq)]
pub struct IntrospectionClient {
    pub url: Url,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for IntrospectionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "IntrospectionClient({}, {})", self.url, self.client_id)
    }
}

/// The checks of the module doc.
#[derive(Debug)]
pub struct Introspector {
    client: IntrospectionClient,
    http: reqwest::Client,
    slots: Arc<Semaphore>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    active: bool,
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
    aud: Option<Audience>,
    scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Introspector {
    pub fn new(client: IntrospectionClient) -> Result<Self, TokenError> {
        if !allowed(&client.url) {
            return Err(TokenError::IssuerUnavailable);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .map_err(|_| TokenError::IssuerUnavailable)?;
        Ok(Self {
            client,
            http,
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    /// What the endpoint says of `token`, checked against `issuers` and `audience`.
    pub async fn check(
        &self,
        token: &str,
        issuers: impl Fn(&str) -> bool,
        audience: &str,
    ) -> Result<VerifiedToken, TokenError> {
        let _slot = self
            .slots
            .try_acquire()
            .map_err(|_| TokenError::IssuerUnavailable)?;
        let answer = self.ask(token).await.map_err(|e| {
            tracing::warn!(error = e, "token introspection failed");
            TokenError::IssuerUnavailable
        })?;
        if !answer.active {
            return Err(TokenError::Inactive);
        }
        let now = jsonwebtoken::get_current_timestamp();
        let (Some(issuer), Some(subject), Some(expires), Some(aud)) =
            (answer.iss, answer.sub, answer.exp, answer.aud)
        else {
            return Err(TokenError::MissingClaim);
        };
        if subject.is_empty() || subject.chars().any(char::is_control) {
            return Err(TokenError::Malformed);
        }
        if !issuers(&issuer) {
            return Err(TokenError::UnknownIssuer);
        }
        let for_us = match aud {
            Audience::One(a) => a == audience,
            Audience::Many(list) => list.iter().any(|a| a == audience),
        };
        if !for_us {
            return Err(TokenError::WrongAudience);
        }
        if expires + super::LEEWAY <= now {
            return Err(TokenError::Expired);
        }
        if answer.nbf.is_some_and(|nbf| nbf > now + super::LEEWAY) {
            return Err(TokenError::NotYetValid);
        }
        Ok(VerifiedToken {
            issuer,
            subject,
            scopes: answer
                .scope
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            expires,
        })
    }

    /// One request to the endpoint (RFC 7662 section 2.1, client_secret_basic).
    async fn ask(&self, token: &str) -> Result<Answer, &'static str> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let mut response = self
            .http
            .post(self.client.url.clone())
            .basic_auth(&self.client.client_id, Some(&self.client.client_secret))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await
            .map_err(|_| "the request failed")?;
        if !response.status().is_success() {
            return Err("the endpoint refused the request (check the client id and secret)");
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| "the answer broke off")? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err("the answer is too large");
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| "the answer is not an introspection response")
    }
}
