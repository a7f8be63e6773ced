//! Opens, once, what a configuration names: the allowed directories (as the sandbox's root
//! descriptors), the keys file (into the live key ring), the audit file (created 0600) and the
//! TLS certificate and key. A problem with any of them is a configuration error, reported with
//! the others, before the server binds.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Config, ConfigError, ConfigErrors};
use crate::files::sandbox::Sandbox;
use crate::fleet::Fleet;
use crate::mcp::request_state::{StateSealer, read_secret_file};
use crate::observability::audit::AuditSink;
use crate::security::auth::{ApiKeys, KeyRing, ReloadError};
use crate::security::key_policy::PolicyBook;
use crate::security::oauth::introspect::Introspector;
use crate::security::oauth::{Fetcher, JwksSource, ResourceServer, TokenVerifier};
use crate::tls::TlsState;

/// What start-up opened.
pub struct Opened {
    /// The sandbox over the allowed directories (`None`: no file tools or resources).
    pub sandbox: Option<Arc<Sandbox>>,
    pub keys: KeyRing,
    pub policies: PolicyBook,
    /// The `requestState` sealer of a shared secret (`None`: a random one per process).
    pub sealer: Option<StateSealer>,
    /// The fleet's Redis (`None`: this instance alone).
    pub fleet: Option<Fleet>,
    /// The identity providers' tokens (`None`: API keys only).
    pub tokens: Option<Arc<ResourceServer>>,
    pub audit: AuditSink,
    pub tls: Option<Arc<TlsState>>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("sandbox", &self.sandbox.is_some())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Opens everything `config` names; every problem is reported.
pub fn open(config: &Config) -> Result<Opened, ConfigErrors> {
    let mut errors = Vec::new();
    let sandbox = sandbox(&config.allow_dirs).map_err(|mut e| errors.append(&mut e));
    let fixed = ApiKeys::from_plain(config.keys.keys.iter().cloned());
    let keys = KeyRing::new(fixed, config.keys_file.clone()).map_err(|e| {
        errors.push(match e {
            ReloadError::File(e) => ConfigError::KeysFile(e),
            ReloadError::IdClash(id) => ConfigError::KeyIdClash(id),
        });
    });
    let secret = match &config.state_secret_file {
        None => Ok(None),
        Some(path) => read_secret_file(path)
            .map(Some)
            .map_err(|e| errors.push(ConfigError::StateSecret(e))),
    };
    let sealer = secret
        .as_ref()
        .map(|s| s.as_deref().map(StateSealer::from_secret));
    // (Configuration checks made sure a fleet comes with a secret.)
    let fleet = match (&config.fleet, &secret) {
        (Some(options), Ok(Some(secret))) => Fleet::connect(options, secret)
            .map(Some)
            .map_err(|e| errors.push(ConfigError::Fleet(e))),
        (Some(_), _) => Err(()),
        (None, _) => Ok(None),
    };
    // The policy may name only keys that exist: checked once the keys are known.
    let policies = match (&config.policy, &keys, &fleet) {
        (None, _, _) => Ok(PolicyBook::unrestricted()),
        (Some(path), Ok(ring), Ok(fleet)) => {
            PolicyBook::load(path.clone(), |id| ring.knows(id), fleet.clone())
                .map_err(|e| errors.extend(e.0.into_iter().map(ConfigError::Policy)))
        }
        (Some(_), _, _) => Err(()),
    };
    let tokens = match &config.oauth {
        None => Ok(None),
        Some(oauth) => Fetcher::new()
            .map(|fetcher| {
                let issuers = oauth
                    .issuers
                    .iter()
                    .map(|url| {
                        let source = oauth
                            .jwks
                            .clone()
                            .map_or(JwksSource::Discover, JwksSource::Url);
                        (url.clone(), source)
                    })
                    .collect();
                let mut verifier = TokenVerifier::new(issuers, oauth.audience.clone(), &fetcher);
                if let Some(client) = &oauth.introspection
                    && let Ok(introspector) = Introspector::new(client.clone())
                {
                    verifier = verifier.with_introspection(introspector);
                }
                Some(Arc::new(ResourceServer::new(
                    verifier,
                    oauth.resource.clone(),
                    oauth.issuer_names.clone(),
                    oauth.scopes.clone(),
                )))
            })
            .map_err(|_| errors.push(ConfigError::OAuth("--oauth-issuer: no HTTP client"))),
    };
    let audit = match &config.audit_log {
        Some(path) => AuditSink::to_file(path).map_err(|e| {
            errors.push(ConfigError::AuditLog {
                dir: path.display().to_string(),
                reason: e.kind().to_string(),
            });
        }),
        None => Ok(AuditSink::to_log(config.log_format)),
    };
    let tls = match &config.tls {
        Some((cert, key)) => TlsState::load(cert, key)
            .map(|t| Some(Arc::new(t)))
            .map_err(|e| errors.push(ConfigError::Tls(e))),
        None => Ok(None),
    };
    match (sandbox, keys, policies, sealer, fleet, tokens, audit, tls) {
        (
            Ok(sandbox),
            Ok(keys),
            Ok(policies),
            Ok(sealer),
            Ok(fleet),
            Ok(tokens),
            Ok(audit),
            Ok(tls),
        ) if errors.is_empty() => Ok(Opened {
            sandbox,
            keys,
            policies,
            sealer,
            fleet,
            tokens,
            audit,
            tls,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

/// Each allowed directory must exist, be a directory and be readable; then the sandbox holds
/// a descriptor of each.
fn sandbox(dirs: &[PathBuf]) -> Result<Option<Arc<Sandbox>>, Vec<ConfigError>> {
    if dirs.is_empty() {
        return Ok(None);
    }
    let mut errors = Vec::new();
    let mut canonical = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let bad = |reason: String| ConfigError::BadDir {
            dir: dir.display().to_string(),
            reason,
        };
        let checked = dir
            .canonicalize()
            .map_err(|e| bad(e.kind().to_string()))
            .and_then(|c| {
                if c.is_dir() {
                    Ok(c)
                } else {
                    Err(bad("not a directory".into()))
                }
            })
            .and_then(|c| {
                std::fs::read_dir(&c)
                    .map(|_| c)
                    .map_err(|e| bad(e.kind().to_string()))
            });
        match checked {
            Ok(c) => canonical.push(c),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Sandbox::new(&canonical)
        .map(|s| Some(Arc::new(s)))
        .map_err(|e| {
            vec![ConfigError::BadDir {
                dir: dirs
                    .first()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                reason: e.kind().to_string(),
            }]
        })
}
