//! The keys of the command line and the environment: each checked (not empty, fit for a
//! Bearer header, enough entropy, no repeats) and given its positional id. With no key and no
//! keys file, one is generated.

use std::fmt;

use super::ConfigError;
use crate::keys;
use crate::security::auth::KeyId;

/// Where the keys came from.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySet {
    pub keys: Vec<(KeyId, String)>,
    /// True when no key was configured and one was generated at start.
    pub generated: bool,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeySet({} keys, generated: {})",
            self.keys.len(),
            self.generated
        )
    }
}

/// The keys of `--api-key` and (when `--env-keys` is given) the value of `MCP_API_KEYS`;
/// `keys_file`: whether a keys file will add more (then no key is generated).
pub fn key_set(
    api_keys: &[String],
    env_keys: Option<String>,
    keys_file: bool,
) -> Result<KeySet, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut keys: Vec<(KeyId, String)> = Vec::new();
    for (i, key) in api_keys.iter().enumerate() {
        keys.push((KeyId::new(format!("cli-{}", i + 1)), key.clone()));
    }
    if let Some(env) = env_keys {
        let listed: Vec<&str> = env
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        if listed.is_empty() {
            errors.push(ConfigError::EnvKeysMissing);
        }
        for (i, key) in listed.into_iter().enumerate() {
            keys.push((KeyId::new(format!("env-{}", i + 1)), key.to_owned()));
        }
    }
    for (i, (_, key)) in keys.iter().enumerate() {
        let problem = if key.is_empty() {
            Some(ConfigError::EmptyKey)
        } else if !keys::is_bearer_token(key) {
            Some(ConfigError::KeySyntax)
        } else if keys::estimated_bits(key) < keys::MIN_KEY_BITS {
            Some(ConfigError::WeakKey)
        } else if keys[..i].iter().any(|(_, k)| k == key) {
            Some(ConfigError::DuplicateKey)
        } else {
            None
        };
        if let Some(e) = problem
            && !errors.contains(&e)
        {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let generated = keys.is_empty() && !keys_file;
    if generated {
        let key = keys::generate_key().map_err(|_| vec![ConfigError::Random])?;
        keys.push((KeyId::new("generated"), key));
    }
    Ok(KeySet { keys, generated })
}
