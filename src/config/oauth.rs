//! `--oauth-issuer`, `--public-url`, `--oauth-audience`, `--oauth-jwks-url`, `--oauth-scopes`
//! and `--no-api-keys`: which identity providers' tokens are accepted, for which resource
//! (see [`crate::security::oauth`]).
//!
//! Decisions: an issuer and a JWKS URL must be https (plain http only on loopback, for tests
//! and local providers), so keys cannot be swapped on the way; `--public-url` must be https
//! too unless it is loopback, since it is the audience every token names; `--oauth-jwks-url`
//! needs exactly one issuer (it would be ambiguous otherwise); `--no-api-keys` needs an issuer
//! and no key (a server nobody can call is a mistake, and keys it would ignore are one too);
//! `offline_access` is never a required scope (MCP's authorization spec).

use reqwest::Url;

use super::{Cli, ConfigError};
use crate::security::oauth::fetch::allowed;

/// The identity-provider settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthOptions {
    pub issuers: Vec<Url>,
    /// The issuers as given (what the metadata lists: an issuer identifier is compared as a
    /// string, and `Url` would add a trailing slash to a bare origin).
    pub issuer_names: Vec<String>,
    /// The public URL of `/mcp`.
    pub resource: Url,
    /// The audience tokens must name.
    pub audience: String,
    pub jwks: Option<Url>,
    /// Scopes every token must carry.
    pub scopes: Vec<String>,
    /// Opaque tokens' introspection, if configured.
    pub introspection: Option<crate::security::oauth::introspect::IntrospectionClient>,
}

fn url(flag: &'static str, text: &str, errors: &mut Vec<ConfigError>) -> Option<Url> {
    match Url::parse(text) {
        Ok(u) if allowed(&u) && u.username().is_empty() && u.password().is_none() => Some(u),
        _ => {
            errors.push(ConfigError::OAuthUrl(flag));
            None
        }
    }
}

/// The settings, if `--oauth-issuer` is given; every problem is reported.
pub fn options(
    cli: &Cli,
    client_secret: Option<String>,
) -> Result<Option<OAuthOptions>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let issuers: Vec<&String> = cli.oauth_issuers.iter().filter(|i| !i.is_empty()).collect();
    if issuers.is_empty() {
        if cli.no_api_keys {
            errors.push(ConfigError::OAuth("--no-api-keys needs --oauth-issuer"));
        }
        return if errors.is_empty() {
            Ok(None)
        } else {
            Err(errors)
        };
    }
    if cli.no_api_keys && (!cli.api_keys.is_empty() || cli.env_keys || cli.keys_file.is_some()) {
        errors.push(ConfigError::OAuth(
            "--no-api-keys with keys given: remove the keys, or --no-api-keys",
        ));
    }
    let issuers: Vec<Url> = issuers
        .iter()
        .filter_map(|i| url("--oauth-issuer", i, &mut errors))
        .collect();
    let resource = match cli.public_url.as_deref() {
        Some(text) => url("--public-url", text, &mut errors),
        None => {
            errors.push(ConfigError::OAuth(
                "--oauth-issuer needs --public-url (the URL clients use for /mcp)",
            ));
            None
        }
    };
    let jwks = cli
        .oauth_jwks_url
        .as_deref()
        .and_then(|text| url("--oauth-jwks-url", text, &mut errors));
    if jwks.is_some() && cli.oauth_issuers.len() != 1 {
        errors.push(ConfigError::OAuth(
            "--oauth-jwks-url needs exactly one --oauth-issuer",
        ));
    }
    let scopes: Vec<String> = cli
        .oauth_scopes
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.iter().any(|s| {
        s == "offline_access"
            || !s
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        errors.push(ConfigError::OAuth(
            "--oauth-scopes: scopes are visible characters without quotes, and not offline_access",
        ));
    }
    let introspection = match (
        &cli.oauth_introspection_url,
        &cli.oauth_client_id,
        client_secret,
    ) {
        (None, None, _) => None,
        (Some(text), Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            url("--oauth-introspection-url", text, &mut errors).map(|url| {
                crate::security::oauth::introspect::IntrospectionClient {
                    url,
                    client_id: id.clone(),
                    client_secret: secret,
                }
            })
        }
        _ => {
            errors.push(ConfigError::OAuth(
                "--oauth-introspection-url needs --oauth-client-id and MCP_OAUTH_CLIENT_SECRET",
            ));
            None
        }
    };
    match (errors.is_empty(), resource) {
        (true, Some(resource)) => Ok(Some(OAuthOptions {
            audience: cli
                .oauth_audience
                .clone()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| resource.to_string()),
            issuer_names: cli
                .oauth_issuers
                .iter()
                .filter(|i| !i.is_empty())
                .cloned()
                .collect(),
            issuers,
            resource,
            jwks,
            scopes,
            introspection,
        })),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_cli as cli;

    fn options_of(cli: &Cli) -> Result<Option<OAuthOptions>, Vec<ConfigError>> {
        options(cli, None)
    }

    #[test]
    fn an_issuer_needs_a_public_url_and_https() {
        assert_eq!(options_of(&cli(&[])), Ok(None));
        let errors = options_of(&cli(&["--oauth-issuer", "http://idp.example"])).expect_err("bad");
        assert!(errors.contains(&ConfigError::OAuthUrl("--oauth-issuer")));
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("--public-url"))
        );
        let ok = options_of(&cli(&[
            "--oauth-issuer",
            "https://idp.example/realms/acme",
            "--public-url",
            "https://mcp.example.com/mcp",
            "--oauth-scopes",
            "mcp:tools,files:read",
        ]))
        .expect("valid")
        .expect("oauth");
        assert_eq!(ok.audience, "https://mcp.example.com/mcp");
        assert_eq!(ok.scopes, vec!["mcp:tools", "files:read"]);
        let local = options_of(&cli(&[
            "--oauth-issuer",
            "http://127.0.0.1:9000",
            "--public-url",
            "http://127.0.0.1:8080/mcp",
        ]));
        assert!(local.is_ok(), "loopback may be plain http");
    }

    #[test]
    fn keys_off_needs_an_issuer_and_no_keys() {
        assert!(options_of(&cli(&["--no-api-keys"])).is_err());
        let errors = options_of(&cli(&[
            "--no-api-keys",
            "--api-key",
            "k1-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGk",
            "--oauth-issuer",
            "https://idp.example",
            "--public-url",
            "https://mcp.example.com/mcp",
        ]))
        .expect_err("keys given");
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn a_jwks_url_names_one_issuer_and_offline_access_is_never_required() {
        let errors = options_of(&cli(&[
            "--oauth-issuer",
            "https://a.example,https://b.example",
            "--public-url",
            "https://mcp.example.com/mcp",
            "--oauth-jwks-url",
            "https://a.example/certs",
            "--oauth-scopes",
            "offline_access",
        ]))
        .expect_err("refused");
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
