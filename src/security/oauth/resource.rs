//! [`ResourceServer`]: what this server says and asks as an OAuth 2.1 resource server: its
//! Protected Resource Metadata (RFC 9728), the `WWW-Authenticate` challenges of its 401s and
//! 403s, the scopes every request needs, and one grant per token subject (its streams).
//!
//! - The metadata is served at `/.well-known/oauth-protected-resource/mcp` with `resource`
//!   equal to the public `/mcp` URL, and at `/.well-known/oauth-protected-resource` with the
//!   public origin, as clients try them in that order; `authorization_servers` lists the
//!   configured issuers, `bearer_methods_supported` only `header`.
//! - Every 401 carries `Bearer resource_metadata="…"` (and `scope="…"` when scopes are
//!   required); one for a bad token adds `error="invalid_token"` and a description of what
//!   to fix. A token without every required scope gets 403 `error="insufficient_scope"` with
//!   all of them in one challenge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use axum::http::HeaderValue;
use reqwest::Url;
use serde_json::{Value, json};

use super::{TokenError, TokenVerifier, VerifiedToken};
use crate::security::auth::KeyGrant;

/// The resource server's configuration and state.
#[derive(Debug)]
pub struct ResourceServer {
    pub verifier: TokenVerifier,
    /// The public URL of `/mcp` (the tokens' audience unless configured otherwise).
    resource: Url,
    issuers: Vec<String>,
    /// Scopes every request's token must carry.
    required: Vec<String>,
    /// `Bearer resource_metadata="…"[, scope="…"]`.
    challenge: String,
    grants: Mutex<HashMap<Arc<str>, Weak<KeyGrant>>>,
}

impl ResourceServer {
    pub fn new(
        verifier: TokenVerifier,
        resource: Url,
        issuers: Vec<String>,
        required: Vec<String>,
    ) -> Self {
        let mut challenge = format!("Bearer resource_metadata=\"{}\"", metadata_url(&resource));
        if !required.is_empty() {
            challenge.push_str(&format!(", scope=\"{}\"", required.join(" ")));
        }
        Self {
            verifier,
            resource,
            issuers,
            required,
            challenge,
            grants: Mutex::default(),
        }
    }

    /// Where the path form of the metadata is served.
    pub fn metadata_path(&self) -> String {
        format!(
            "/.well-known/oauth-protected-resource{}",
            self.resource.path().trim_end_matches('/')
        )
    }

    /// The metadata document, in the path form or the root form.
    pub fn metadata(&self, root: bool) -> Value {
        let resource = if root {
            self.resource.origin().ascii_serialization()
        } else {
            self.resource.to_string()
        };
        let mut doc = json!({
            "resource": resource,
            "authorization_servers": self.issuers,
            "bearer_methods_supported": ["header"],
        });
        if !self.required.is_empty() {
            doc["scopes_supported"] = json!(self.required);
        }
        doc
    }

    /// The challenge of a 401 without a token.
    pub fn challenge(&self) -> HeaderValue {
        header(&self.challenge)
    }

    /// The challenge of a 401 for a token that was refused.
    pub fn invalid_token(&self, error: TokenError) -> HeaderValue {
        header(&format!(
            "{}, error=\"invalid_token\", error_description=\"{error}\"",
            self.challenge
        ))
    }

    /// The required scopes `token` lacks, as the challenge of a 403 (`None`: it has them all).
    pub fn insufficient_scope(&self, token: &VerifiedToken) -> Option<HeaderValue> {
        if self.required.iter().all(|s| token.scopes.contains(s)) {
            return None;
        }
        Some(header(&format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\", error_description=\"the token lacks a scope this server requires\"",
            self.required.join(" "),
            metadata_url(&self.resource)
        )))
    }

    /// The grant of a subject (its streams), shared by its concurrent requests; dropped when
    /// the last of them ends.
    pub fn grant(&self, binding: &str) -> Arc<KeyGrant> {
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(grant) = grants.get(binding).and_then(Weak::upgrade) {
            return grant;
        }
        if grants.len() > 1024 {
            grants.retain(|_, g| g.strong_count() > 0);
        }
        let grant = Arc::new(KeyGrant::default());
        grants.insert(binding.into(), Arc::downgrade(&grant));
        grant
    }
}

/// `https://host/.well-known/oauth-protected-resource/<path of /mcp>`.
fn metadata_url(resource: &Url) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource{}",
        resource.origin().ascii_serialization(),
        resource.path().trim_end_matches('/')
    )
}

/// A header value of text made here (URLs that parsed, fixed words): visible ASCII.
fn header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}
