//! [`RequireCredential`]: the layer every `/mcp` request passes: a valid API key, or (with
//! `--oauth-issuer`) a valid access token; 401 otherwise, 403 for a token without a required
//! scope. Behind it, the request carries [`Authenticated`] (the handlers read it from the
//! request, the audit from the response).
//!
//! A key is checked at once. A token may need its issuer's keys fetched first
//! ([`crate::security::oauth::jwks`]), so the request may wait for them; with the keys at
//! hand its check finishes at the first poll. A credential is tried as a key first (every
//! stored digest, in constant time) and then, if it has a JWT's shape, as a token; with
//! `--no-api-keys` keys are not tried at all.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::{Authenticated, KeyRing, bearer_token};
use crate::error::Rejection;
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

impl<S> Layer<S> for RequireCredential {
    type Service = RequireCredentialService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireCredentialService {
            check: self.clone(),
            inner,
        }
    }
}

/// The service of [`RequireCredential`].
#[derive(Debug, Clone)]
pub struct RequireCredentialService<S> {
    check: RequireCredential,
    inner: S,
}

/// What a token's check decided.
enum Admission {
    Caller(Authenticated),
    Refused(Response),
}

type Verification = Pin<Box<dyn Future<Output = Result<VerifiedToken, TokenError>> + Send>>;

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
    fn token_caller(&self, verified: Result<VerifiedToken, TokenError>) -> Admission {
        let (tokens, verified) = match (&self.tokens, verified) {
            (Some(tokens), Ok(verified)) => (tokens, verified),
            (_, Err(e)) => {
                return Admission::Refused(
                    self.unauthorized(Rejection::InvalidCredentials, Some(e)),
                );
            }
            (None, Ok(_)) => {
                return Admission::Refused(self.unauthorized(Rejection::InvalidCredentials, None));
            }
        };
        if let Some(challenge) = tokens.insufficient_scope(&verified) {
            let mut response = Rejection::InsufficientScope.into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
            return Admission::Refused(response);
        }
        let principal = Principal::from(TokenSubject::new(&verified.issuer, &verified.subject));
        // The token's `exp` on the monotonic clock: its streams end then.
        let left = verified
            .expires
            .saturating_sub(jsonwebtoken::get_current_timestamp());
        Admission::Caller(Authenticated {
            grant: tokens.grant(principal.binding()),
            rules: self.policies.rules_for_token(&principal, &verified.scopes),
            principal,
            expires: Some(tokio::time::Instant::now() + std::time::Duration::from_secs(left)),
        })
    }
}

impl<S> Service<Request> for RequireCredentialService<S>
where
    S: Service<Request, Response = Response> + Clone,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CredentialFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let check = &self.check;
        let token = match bearer_token(request.headers()) {
            Ok(token) => token,
            Err(rejection) => {
                return CredentialFuture::answered(check.unauthorized(rejection, None));
            }
        };
        if check.api_keys
            && let Some(mut authenticated) = check.keys.authenticate(token)
        {
            if check.policies.is_configured() {
                authenticated.rules = check.policies.rules_for(&authenticated.principal);
            }
            request.extensions_mut().insert(authenticated.clone());
            return CredentialFuture::Inner {
                future: self.inner.call(request),
                authenticated: Some(authenticated),
            };
        }
        let Some(tokens) = check.tokens.clone().filter(|t| t.verifier.accepts(token)) else {
            return CredentialFuture::answered(
                check.unauthorized(Rejection::InvalidCredentials, None),
            );
        };
        let token = token.to_owned();
        let verification: Verification =
            Box::pin(async move { tokens.verifier.verify(&token).await });
        // The service that was made ready goes with the request; this one takes a clone.
        let ready = self.inner.clone();
        CredentialFuture::Verifying {
            verification,
            rest: Some((
                std::mem::replace(&mut self.inner, ready),
                request,
                check.clone(),
            )),
        }
    }
}

pin_project! {
    /// The future of a [`RequireCredentialService`].
    #[project = CredentialFutureProj]
    pub enum CredentialFuture<S: Service<Request>> {
        Answered { response: Option<Response> },
        Verifying {
            verification: Verification,
            rest: Option<(S, Request, RequireCredential)>,
        },
        Inner { #[pin] future: S::Future, authenticated: Option<Authenticated> },
    }
}

impl<S: Service<Request>> CredentialFuture<S> {
    fn answered(response: Response) -> Self {
        Self::Answered {
            response: Some(response),
        }
    }
}

impl<S> Future for CredentialFuture<S>
where
    S: Service<Request, Response = Response>,
{
    type Output = Result<Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                // Polled again after completion (a caller's bug): a generic 500, never a panic.
                CredentialFutureProj::Answered { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .unwrap_or_else(|| Rejection::Internal.into_response())));
                }
                CredentialFutureProj::Verifying { verification, rest } => {
                    let verified = ready!(verification.as_mut().poll(cx));
                    let Some((mut inner, mut request, check)) = rest.take() else {
                        self.set(Self::Answered { response: None });
                        continue;
                    };
                    let next = match check.token_caller(verified) {
                        Admission::Caller(authenticated) => {
                            request.extensions_mut().insert(authenticated.clone());
                            Self::Inner {
                                future: inner.call(request),
                                authenticated: Some(authenticated),
                            }
                        }
                        Admission::Refused(response) => Self::answered(response),
                    };
                    self.set(next);
                }
                CredentialFutureProj::Inner {
                    future,
                    authenticated,
                } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(authenticated) = authenticated.take() {
                        response.extensions_mut().insert(authenticated);
                    }
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
