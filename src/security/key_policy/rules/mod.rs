//! The policy file and what it grants each key: [`KeyRules`], parsed from TOML (the `toml`
//! crate) into plain types and checked whole, so that every problem is reported at once.
//!
//! The shape (and nothing else; an unknown field is an error, so a typo cannot silently
//! grant more):
//! ```toml
//! [defaults]                       # every key without an entry of its own
//! rate_limit = "600/60s"
//!
//! [keys.alice]
//! tools = ["read_file", "list_*"]  # globs over tool names; absent = every tool
//! resources = true                 # resources/* and completion (default true)
//! rate_limit = "100/60s"           # requests per window for the key, across all addresses
//! max_sessions = 10                # live 2025-era sessions
//! max_streams = 4                  # open event streams
//!
//! [keys.alice.tool_limits]
//! search_files = "10/60s"          # calls of that tool per window
//!
//! [subjects."https://idp.example.com/realms/acme|5f1c…"]   # a token's issuer|subject
//! tools = ["read_file"]            # the same fields as a key's entry
//!
//! [scopes."mcp:files"]             # a token scope, and the tools it opens
//! tools = ["read_file", "list_*"]
//! ```
//! A token's caller takes its subject's entry, or `[defaults]`. When the file has `[scopes.*]`
//! entries, a token's caller may moreover use only the tools of the scopes its token carries
//! (none if it carries none of them): the entry says what the caller may do, the token's
//! scopes what this token was granted.
//! A key with an entry of its own takes that entry only: `[defaults]` is for the keys without
//! one, not a base the entries are merged onto (an operator reads one entry to know what a key
//! may do). A field the entry leaves out takes the built-in default: every tool, resources
//! allowed, no per-key rate, the server-wide session and stream caps.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;

use crate::security::rate_limit::{Policy, RateLimitStore, RateLimiter};

/// Requests per window, written `N/<duration>` with the duration in `s`, `m` or `h`
/// (`"600/60s"`, `"10/1m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rate {
    pub limit: u32,
    pub window: Duration,
}

impl Rate {
    /// Parses `N/<duration>`; `None` for anything else, a zero count or a zero window.
    pub fn parse(text: &str) -> Option<Self> {
        let (count, window) = text.trim().split_once('/')?;
        let limit: u32 = count.trim().parse().ok().filter(|n| *n > 0)?;
        let window = window.trim();
        let unit = window.chars().last()?;
        let amount: u64 = window[..window.len() - unit.len_utf8()].parse().ok()?;
        let seconds = match unit {
            's' => amount,
            'm' => amount.checked_mul(60)?,
            'h' => amount.checked_mul(3600)?,
            _ => return None,
        };
        (seconds > 0).then(|| Self {
            limit,
            window: Duration::from_secs(seconds),
        })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}s", self.limit, self.window.as_secs())
    }
}

/// A rate and the store that counts against it (shared by every key and tool with the same
/// rate; each counts under its own subject).
#[derive(Debug, Clone)]
pub struct Limit {
    pub rate: Rate,
    pub store: Arc<dyn RateLimitStore>,
}

/// Makes (or finds) the store of a rate.
pub type StoreFor<'a> = &'a mut dyn FnMut(Rate) -> Arc<dyn RateLimitStore>;

/// A store of its own for `rate` (offline checks, tests): nothing is shared or kept.
pub fn standalone_store(rate: Rate) -> Arc<dyn RateLimitStore> {
    Arc::new(RateLimiter::new(
        Policy {
            limit: rate.limit,
            window: rate.window,
            max_clients: 16,
            ipv6_prefix: 128,
        },
        tokio::time::Instant::now(),
    ))
}

/// What one key may do.
#[derive(Debug, Default)]
pub struct KeyRules {
    /// Globs over tool names; `None`: every tool.
    pub tools: Option<Vec<glob::Pattern>>,
    /// `resources/*` and `completion/complete` allowed.
    pub resources: bool,
    /// Requests per window for the key, across all addresses.
    pub rate_limit: Option<Limit>,
    pub max_sessions: Option<usize>,
    pub max_streams: Option<usize>,
    /// Calls per window of the named tools.
    pub tool_limits: BTreeMap<String, Limit>,
    /// The tools a token's scopes open (`None`: no such limit); a tool must match both this
    /// and `tools`.
    pub scope_tools: Option<Vec<glob::Pattern>>,
    /// The `tools/list` results of these rules, per era, serialised on first use (the rules
    /// are replaced, not changed, on a reload, so the cache goes with them).
    pub tools_list: [OnceLock<Arc<str>>; 2],
}

impl KeyRules {
    /// Everything allowed, no per-key bound: a key without a policy.
    pub fn unrestricted() -> Self {
        Self {
            resources: true,
            ..Self::default()
        }
    }

    /// Nothing allowed: a key whose policy failed to load (fail closed).
    pub fn denied() -> Self {
        Self {
            tools: Some(Vec::new()),
            resources: false,
            ..Self::default()
        }
    }

    /// Whether the key may see and call the tool `name`.
    pub fn allows_tool(&self, name: &str) -> bool {
        let matches = |globs: &Option<Vec<glob::Pattern>>| {
            globs
                .as_ref()
                .is_none_or(|globs| globs.iter().any(|g| g.matches(name)))
        };
        matches(&self.tools) && matches(&self.scope_tools)
    }

    /// Whether every tool is allowed (the shared `tools/list` result applies).
    pub fn allows_every_tool(&self) -> bool {
        self.tools.is_none() && self.scope_tools.is_none()
    }

    /// These rules, with only the tools a token's scopes open (`opened`) on top.
    pub fn narrowed(&self, opened: Vec<glob::Pattern>) -> Self {
        Self {
            tools: self.tools.clone(),
            resources: self.resources,
            rate_limit: self.rate_limit.clone(),
            max_sessions: self.max_sessions,
            max_streams: self.max_streams,
            tool_limits: self.tool_limits.clone(),
            scope_tools: Some(opened),
            tools_list: Default::default(),
        }
    }
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    defaults: Option<EntryShape>,
    #[serde(default)]
    keys: BTreeMap<String, EntryShape>,
    #[serde(default)]
    subjects: BTreeMap<String, EntryShape>,
    #[serde(default)]
    scopes: BTreeMap<String, ScopeShape>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeShape {
    tools: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryShape {
    tools: Option<Vec<String>>,
    resources: Option<bool>,
    rate_limit: Option<String>,
    max_sessions: Option<usize>,
    max_streams: Option<usize>,
    #[serde(default)]
    tool_limits: BTreeMap<String, String>,
}

/// A problem with a policy file. It names the key and the field, never a key's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("is not a policy file: {0}")]
    Syntax(String),
    #[error("{entry}: '{pattern}' is not a tool glob")]
    BadGlob { entry: String, pattern: String },
    #[error("{entry}: {field} '{value}' is not a rate such as \"600/60s\"")]
    BadRate {
        entry: String,
        field: String,
        value: String,
    },
    #[error("{entry}: {field} must be greater than zero")]
    Zero { entry: String, field: &'static str },
    #[error("keys.{0}: no key has this id")]
    UnknownKey(String),
    #[error("subjects.{0}: not an issuer|subject pair")]
    BadSubject(String),
}

/// A parsed policy file: the rules of the keys it names, and of every other key.
#[derive(Debug)]
pub struct Policies {
    pub defaults: Arc<KeyRules>,
    pub keys: BTreeMap<String, Arc<KeyRules>>,
    /// What applies to access tokens' callers.
    pub tokens: Box<TokenPolicies>,
}

/// The rules of a token caller under a scope set, by its entry (address) and the scopes.
type Scoped = std::sync::Mutex<BTreeMap<(usize, Vec<String>), Arc<KeyRules>>>;

/// The part of a policy for access tokens' callers.
#[derive(Debug, Default)]
pub struct TokenPolicies {
    /// Token callers by `issuer|subject`.
    pub subjects: BTreeMap<String, Arc<KeyRules>>,
    /// The tools each token scope opens (empty: scopes do not limit tools).
    pub scopes: BTreeMap<String, Vec<glob::Pattern>>,
    /// The rules of a token caller under the scopes it holds, made once per entry and scope
    /// set (and dropped with the policy on a reload).
    scoped: Scoped,
}

/// Scope sets whose rules are remembered per policy (beyond, they are made per request).
const SCOPED: usize = 1024;

impl Policies {
    /// No policy file: every key may do everything.
    pub fn open() -> Self {
        Self {
            defaults: Arc::new(KeyRules::unrestricted()),
            keys: BTreeMap::new(),
            tokens: Box::default(),
        }
    }

    /// What a reload that could not read or parse the file leaves: the defaults of `previous`
    /// and its scopes, and every key and subject it named denied everything (fail closed).
    pub fn fail_closed(previous: &Self) -> Self {
        let denied = Arc::new(KeyRules::denied());
        Self {
            defaults: previous.defaults.clone(),
            keys: previous
                .keys
                .keys()
                .map(|id| (id.clone(), denied.clone()))
                .collect(),
            tokens: Box::new(TokenPolicies {
                subjects: previous
                    .tokens
                    .subjects
                    .keys()
                    .map(|name| (name.clone(), denied.clone()))
                    .collect(),
                scopes: previous.tokens.scopes.clone(),
                scoped: Scoped::default(),
            }),
        }
    }

    /// The rules of a token's caller named `subject` (`issuer|subject`) holding `scopes`.
    pub fn rules_for_token(&self, subject: &str, scopes: &[String]) -> Arc<KeyRules> {
        let tokens = &self.tokens;
        let base = tokens.subjects.get(subject).unwrap_or(&self.defaults);
        if tokens.scopes.is_empty() {
            return base.clone();
        }
        let mut held: Vec<String> = scopes
            .iter()
            .filter(|s| tokens.scopes.contains_key(*s))
            .cloned()
            .collect();
        held.sort();
        held.dedup();
        let key = (Arc::as_ptr(base) as usize, held);
        let mut scoped = tokens.scoped.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rules) = scoped.get(&key) {
            return rules.clone();
        }
        let opened = key
            .1
            .iter()
            .flat_map(|s| tokens.scopes[s].iter().cloned())
            .collect();
        let rules = Arc::new(base.narrowed(opened));
        if scoped.len() < SCOPED {
            scoped.insert(key, rules.clone());
        }
        rules
    }

    /// The rules of the key named `id`.
    pub fn rules_for(&self, id: &str) -> &Arc<KeyRules> {
        self.keys.get(id).unwrap_or(&self.defaults)
    }

    /// Parses a policy file. `known`: whether a key id exists (an entry for no key is an error,
    /// usually a typo). Every problem is reported; the entries that are sound are returned
    /// with them, so a reload can fail closed for exactly the entries that are not.
    pub fn parse(
        text: &str,
        known: impl Fn(&str) -> bool,
        store_for: StoreFor<'_>,
    ) -> Result<Self, (Vec<PolicyError>, Option<Self>)> {
        let shape: FileShape = toml::from_str(text).map_err(|e| {
            // The message says what and where, never the value that was wrong.
            let what = e.message().to_owned();
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let at = line.map_or(String::new(), |l| format!(" (line {l})"));
            (vec![PolicyError::Syntax(format!("{what}{at}"))], None)
        })?;
        let mut errors = Vec::new();
        let defaults = match shape.defaults {
            None => Arc::new(KeyRules::unrestricted()),
            Some(entry) => Arc::new(
                rules("defaults", entry, store_for)
                    .map_err(|mut e| errors.append(&mut e))
                    .unwrap_or_else(|()| KeyRules::denied()),
            ),
        };
        let mut subjects = BTreeMap::new();
        for (name, entry) in shape.subjects {
            let label = format!("subjects.{name}");
            if name
                .split_once('|')
                .is_none_or(|(i, s)| i.is_empty() || s.is_empty())
            {
                errors.push(PolicyError::BadSubject(name.chars().take(64).collect()));
            }
            let rules = rules(&label, entry, store_for)
                .map_err(|mut e| errors.append(&mut e))
                .unwrap_or_else(|()| KeyRules::denied());
            subjects.insert(name, Arc::new(rules));
        }
        let mut scopes = BTreeMap::new();
        for (name, scope) in shape.scopes {
            let entry = format!("scopes.{name}");
            scopes.insert(name, globs(&entry, &scope.tools, &mut errors));
        }
        let mut keys = BTreeMap::new();
        for (id, entry) in shape.keys {
            let name = format!("keys.{id}");
            if !known(&id) {
                errors.push(PolicyError::UnknownKey(id.clone()));
            }
            let rules = rules(&name, entry, store_for)
                .map_err(|mut e| errors.append(&mut e))
                .unwrap_or_else(|()| KeyRules::denied());
            keys.insert(id, Arc::new(rules));
        }
        let policies = Self {
            defaults,
            keys,
            tokens: Box::new(TokenPolicies {
                subjects,
                scopes,
                scoped: Scoped::default(),
            }),
        };
        if errors.is_empty() {
            Ok(policies)
        } else {
            Err((errors, Some(policies)))
        }
    }
}

/// The globs of `list`; each one that is not a glob is a problem of `entry`.
fn globs(entry: &str, list: &[String], errors: &mut Vec<PolicyError>) -> Vec<glob::Pattern> {
    list.iter()
        .filter_map(|g| {
            glob::Pattern::new(g)
                .map_err(|_| {
                    errors.push(PolicyError::BadGlob {
                        entry: entry.to_owned(),
                        pattern: g.chars().take(64).collect(),
                    });
                })
                .ok()
        })
        .collect()
}

/// One entry's rules, or every problem it has.
fn rules(
    entry: &str,
    shape: EntryShape,
    store_for: StoreFor<'_>,
) -> Result<KeyRules, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let rate = |field: String, value: &str, errors: &mut Vec<PolicyError>| {
        let parsed = Rate::parse(value);
        if parsed.is_none() {
            errors.push(PolicyError::BadRate {
                entry: entry.to_owned(),
                field,
                value: value.chars().take(64).collect(),
            });
        }
        parsed
    };
    let tools = shape.tools.map(|list| globs(entry, &list, &mut errors));
    let rate_limit = shape
        .rate_limit
        .as_deref()
        .and_then(|v| rate("rate_limit".into(), v, &mut errors));
    let mut tool_limits = BTreeMap::new();
    for (tool, value) in &shape.tool_limits {
        if let Some(r) = rate(format!("tool_limits.{tool}"), value, &mut errors) {
            tool_limits.insert(tool.clone(), r);
        }
    }
    for (field, value) in [
        ("max_sessions", shape.max_sessions),
        ("max_streams", shape.max_streams),
    ] {
        if value == Some(0) {
            errors.push(PolicyError::Zero {
                entry: entry.to_owned(),
                field,
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut limit = |rate: Rate| Limit {
        rate,
        store: store_for(rate),
    };
    Ok(KeyRules {
        tools,
        resources: shape.resources.unwrap_or(true),
        rate_limit: rate_limit.map(&mut limit),
        max_sessions: shape.max_sessions,
        max_streams: shape.max_streams,
        tool_limits: tool_limits
            .into_iter()
            .map(|(tool, rate)| (tool, limit(rate)))
            .collect(),
        scope_tools: None,
        tools_list: Default::default(),
    })
}

#[cfg(test)]
mod tests;
