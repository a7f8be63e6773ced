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
//! ```
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
        self.tools
            .as_ref()
            .is_none_or(|globs| globs.iter().any(|g| g.matches(name)))
    }

    /// Whether every tool is allowed (the shared `tools/list` result applies).
    pub fn allows_every_tool(&self) -> bool {
        self.tools.is_none()
    }
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    defaults: Option<EntryShape>,
    #[serde(default)]
    keys: BTreeMap<String, EntryShape>,
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
}

/// A parsed policy file: the rules of the keys it names, and of every other key.
#[derive(Debug)]
pub struct Policies {
    pub defaults: Arc<KeyRules>,
    pub keys: BTreeMap<String, Arc<KeyRules>>,
}

impl Policies {
    /// No policy file: every key may do everything.
    pub fn open() -> Self {
        Self {
            defaults: Arc::new(KeyRules::unrestricted()),
            keys: BTreeMap::new(),
        }
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
        let policies = Self { defaults, keys };
        if errors.is_empty() {
            Ok(policies)
        } else {
            Err((errors, Some(policies)))
        }
    }
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
    let tools = shape.tools.map(|globs| {
        globs
            .iter()
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
    });
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
        tools_list: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        text: &str,
        known: impl Fn(&str) -> bool,
    ) -> Result<Policies, (Vec<PolicyError>, Option<Policies>)> {
        Policies::parse(text, known, &mut standalone_store)
    }

    const EXAMPLE: &str = r#"
[defaults]
rate_limit = "600/60s"

[keys.alice]
tools = ["read_file", "list_*"]
resources = true
rate_limit = "100/60s"
max_sessions = 10
max_streams = 4

[keys.alice.tool_limits]
search_files = "10/60s"
"#;

    #[test]
    fn rates_are_a_count_per_window() {
        let r = |s| Rate::parse(s).map(|r| (r.limit, r.window.as_secs()));
        assert_eq!(r("600/60s"), Some((600, 60)));
        assert_eq!(r("10/1m"), Some((10, 60)));
        assert_eq!(r(" 5 / 2h "), Some((5, 7200)));
        for bad in [
            "", "600", "0/60s", "5/0s", "5/60", "5/60d", "x/60s", "5/-1s", "5/s",
        ] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_documented_example_parses_to_what_it_says() {
        let p = parse(EXAMPLE, |id| id == "alice").expect("valid");
        let alice = p.rules_for("alice");
        assert!(alice.allows_tool("read_file"));
        assert!(alice.allows_tool("list_directory"));
        assert!(!alice.allows_tool("search_files"));
        assert!(!alice.allows_tool("read_file2"));
        assert_eq!(
            alice.rate_limit.as_ref().map(|l| l.rate),
            Rate::parse("100/60s")
        );
        assert_eq!((alice.max_sessions, alice.max_streams), (Some(10), Some(4)));
        assert_eq!(
            alice.tool_limits["search_files"].rate,
            Rate::parse("10/60s").expect("rate")
        );
        let other = p.rules_for("bob");
        assert!(other.allows_every_tool() && other.resources);
        assert_eq!(
            other.rate_limit.as_ref().map(|l| l.rate),
            Rate::parse("600/60s")
        );
    }

    #[test]
    fn every_problem_is_named_and_only_bad_entries_fail_closed() {
        let text = r#"
[keys.alice]
tools = ["[oops"]
rate_limit = "lots"
max_streams = 0

[keys.bob]
tools = ["read_file"]

[keys.ghost]
"#;
        let (errors, partial) =
            parse(text, |id| id != "ghost").expect_err("three problems in alice");
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors.contains(&PolicyError::UnknownKey("ghost".into())));
        let partial = partial.expect("the sound entries");
        assert!(
            !partial.rules_for("alice").allows_tool("read_file"),
            "denied"
        );
        assert!(partial.rules_for("bob").allows_tool("read_file"));
    }

    #[test]
    fn unknown_fields_and_broken_files_are_refused_without_echoing_values() {
        for text in [
            "[keys.alice]\ntool = [\"x\"]\n",
            "[defaults]\nrate = \"1/1s\"\n",
            "[keys.alice\n",
            "secret-looking-value\n",
        ] {
            let (errors, _) = parse(text, |_| true).expect_err(text);
            assert!(matches!(errors[..], [PolicyError::Syntax(_)]), "{text}");
            assert!(
                !errors[0].to_string().contains("secret-looking"),
                "{errors:?}"
            );
        }
        assert!(
            parse("", |_| true).is_ok(),
            "an empty file restricts nothing"
        );
    }
}
