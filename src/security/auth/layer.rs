//! [`RequireCredential`]: the layer every `/mcp` request passes: a valid API key, or (with
//! `--oauth-issuer`) a valid access token; 401 otherwise, 403 for a token without a required
//! scope. Behind it, the request carries [`Authenticated`] (the handlers read it from the
//! request, the audit from the response).
//!
//! A [`WaitingPolicy`]: a key is checked at once. A token may need its issuer's keys fetched first
//! ([`crate::security::oauth::jwks`]), so the request may wait for them; with the keys at
//! hand its check finishes at the first poll. A credential is tried as a key first (every
//! stored digest, in constant time) and then, if it has a JWT's shape, as a token; with
//! `--no-api-keys` keys are not tried at all.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{Authenticated, KeyRing, bearer_token};
use crate::error::Rejection;
use crate::policy_wait::{Step, WaitingPolicy};
use crate::security::key_policy::PolicyBook;
use crate::security::oauth::{ResourceServer, TokenError, VerifiedToken};
use crate::security::principal::{Principal, TokenSubject};

/// Who may call: the keys, the identity providers, and the rules each caller carries.
#[derive(Debug, Clone)]
pub struct RequireCredential {
    pub keys: Arc<KeyRing>,
    /// Whether API keys are accepted (`--no-api-keys` turns them off).
    pub api_keys: bool,
    /// The identity providers' tokens (`--oauth-issuer`), if any.
    pub tokens: Option<Arc<ResourceServer>>,
    /// Whose rules the request carries on (see [`crate::security::key_policy`]).
    pub policies: Arc<PolicyBook>,
}

impl RequireCredential {
    /// 401 for a missing or refused credential, with the challenge of the resource server.
    fn unauthorized(&self, rejection: Rejection, error: Option<TokenError>) -> Response {
        let missing = rejection == Rejection::MissingCredentials;
        let mut response = rejection.into_response();
        if let Some(tokens) = &self.tokens {
            let challenge = match error {
                Some(e) => tokens.invalid_token(e),
                None if missing => tokens.challenge(),
                None => tokens.invalid_token(TokenError::Malformed),
            };
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }

    /// The caller a verified token names; a 401 for a refused token, a 403 for one without
    /// a required scope.
    fn token_caller(
        &self,
        verified: Result<VerifiedToken, TokenError>,
    ) -> Step<Authenticated, Result<VerifiedToken, TokenError>> {
        let (tokens, verified) = match (&self.tokens, verified) {
            (Some(tokens), Ok(verified)) => (tokens, verified),
            (_, Err(e)) => {
                return Step::Answer(self.unauthorized(Rejection::InvalidCredentials, Some(e)));
            }
            (None, Ok(_)) => {
                return Step::Answer(self.unauthorized(Rejection::InvalidCredentials, None));
            }
        };
        if let Some(challenge) = tokens.insufficient_scope(&verified) {
            let mut response = Rejection::InsufficientScope.into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
            return Step::Answer(response);
        }
        let principal = Principal::from(TokenSubject::new(&verified.issuer, &verified.subject));
        // The token's `exp` on the monotonic clock: its streams end then.
        let left = verified
            .expires
            .saturating_sub(jsonwebtoken::get_current_timestamp());
        Step::Pass(Authenticated {
            grant: tokens.grant(principal.binding()),
            rules: self.policies.rules_for_token(&principal, &verified.scopes),
            principal,
            expires: Some(tokio::time::Instant::now() + std::time::Duration::from_secs(left)),
        })
    }
}

impl WaitingPolicy for RequireCredential {
    type Carry = Authenticated;
    type Outcome = Result<VerifiedToken, TokenError>;

    fn before(&self, request: &mut Request) -> Step<Authenticated, Self::Outcome> {
        let token = match bearer_token(request.headers()) {
            Ok(token) => token,
            Err(rejection) => return Step::Answer(self.unauthorized(rejection, None)),
        };
        if self.api_keys
            && let Some(mut authenticated) = self.keys.authenticate(token)
        {
            if self.policies.is_configured() {
                authenticated.rules = self.policies.rules_for(&authenticated.principal);
            }
            request.extensions_mut().insert(authenticated.clone());
            return Step::Pass(authenticated);
        }
        let Some(tokens) = self.tokens.clone().filter(|t| t.verifier.accepts(token)) else {
            return Step::Answer(self.unauthorized(Rejection::InvalidCredentials, None));
        };
        let token = token.to_owned();
        Step::Wait(Box::pin(
            async move { tokens.verifier.verify(&token).await },
        ))
    }

    fn resume(
        &self,
        verified: Self::Outcome,
        request: &mut Request,
    ) -> Step<Authenticated, Self::Outcome> {
        let step = self.token_caller(verified);
        if let Step::Pass(authenticated) = &step {
            request.extensions_mut().insert(authenticated.clone());
        }
        step
    }

    fn after(authenticated: Authenticated, response: &mut Response) {
        response.extensions_mut().insert(authenticated);
    }
}
