//! `secure-mcp-server policy check PATH [--keys-file F]`: validates a policy file offline and
//! prints what each key may do, so an operator sees the effect before a reload applies it.
//!
//! Key ids are checked against the keys file when one is given, and against the positional ids
//! of command-line and environment keys (`cli-N`, `env-N`) always.

use super::rules::{KeyRules, Policies, standalone_store};
use crate::keys;
use std::fmt::Write as _;
use std::path::PathBuf;

/// `policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and print what each key may do.
    Check {
        /// The policy file.
        path: PathBuf,
        /// The keys file whose ids the policy may name.
        #[arg(long, value_name = "PATH")]
        keys_file: Option<PathBuf>,
    },
}

/// Runs a `policy` subcommand: the report on success, every problem (one per line) otherwise.
pub fn run(command: &PolicyCommand) -> Result<String, Vec<String>> {
    let PolicyCommand::Check { path, keys_file } = command;
    let mut file_ids = Vec::new();
    if let Some(keys_file) = keys_file {
        let text = std::fs::read_to_string(keys_file)
            .map_err(|e| vec![format!("--keys-file: cannot be read: {}", e.kind())])?;
        file_ids = keys::parse_keys_file(&text)
            .map_err(|e| vec![format!("--keys-file: {e}")])?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
    }
    let known = |id: &str| file_ids.iter().any(|f| f == id) || is_positional(id);
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("policy: cannot be read: {}", e.kind())])?;
    let policies =
        Policies::parse(&text, known, &mut standalone_store).map_err(|(errors, _)| {
            errors
                .iter()
                .map(|e| format!("policy: {e}"))
                .collect::<Vec<_>>()
        })?;
    let mut out = String::new();
    for (id, rules) in &policies.keys {
        let _ = writeln!(out, "{id}: {}", describe(rules));
    }
    for (subject, rules) in &policies.tokens.subjects {
        let _ = writeln!(out, "token subject {subject}: {}", describe(rules));
    }
    let _ = writeln!(out, "every other key: {}", describe(&policies.defaults));
    for (scope, globs) in &policies.tokens.scopes {
        let tools: Vec<&str> = globs.iter().map(|g| g.as_str()).collect();
        let _ = writeln!(out, "token scope {scope} opens: {}", tools.join(", "));
    }
    Ok(out)
}

/// `cli-N` or `env-N`: the ids of command-line and environment keys.
fn is_positional(id: &str) -> bool {
    ["cli-", "env-"].iter().any(|prefix| {
        id.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// One line saying what `rules` allow.
pub fn describe(rules: &KeyRules) -> String {
    let tools = match &rules.tools {
        None => "every tool".to_owned(),
        Some(globs) if globs.is_empty() => "no tool".to_owned(),
        Some(globs) => format!(
            "tools {}",
            globs
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut parts = vec![
        tools,
        format!("resources {}", if rules.resources { "yes" } else { "no" }),
    ];
    if let Some(limit) = &rules.rate_limit {
        parts.push(format!("{} requests", limit.rate));
    }
    if let Some(n) = rules.max_sessions {
        parts.push(format!("{n} sessions"));
    }
    if let Some(n) = rules.max_streams {
        parts.push(format!("{n} streams"));
    }
    for (tool, limit) in &rules.tool_limits {
        parts.push(format!("{tool} {} calls", limit.rate));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_each_key_and_every_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.toml");
        let keys_file = dir.path().join("keys");
        std::fs::write(&keys_file, keys::keys_file_line("alice", "some-key-value")).expect("write");
        std::fs::write(
            &path,
            "[defaults]\nrate_limit = \"600/60s\"\n[keys.alice]\ntools = [\"read_*\"]\n\
             [keys.alice.tool_limits]\nread_file = \"10/60s\"\n[keys.cli-1]\nresources = false\n",
        )
        .expect("write");
        let check = |keys_file: Option<PathBuf>| {
            run(&PolicyCommand::Check {
                path: path.clone(),
                keys_file,
            })
        };
        let report = check(Some(keys_file)).expect("valid");
        assert_eq!(
            report,
            "alice: tools read_*; resources yes; read_file 10/60s calls\n\
             cli-1: every tool; resources no\n\
             every other key: every tool; resources yes; 600/60s requests\n"
        );
        let problems = check(None).expect_err("alice is unknown without the keys file");
        assert_eq!(problems, ["policy: keys.alice: no key has this id"]);
        std::fs::write(
            &path,
            "[subjects.\"https://idp.example|alice\"]\ntools = [\"read_file\"]\n\
             [scopes.\"mcp:files\"]\ntools = [\"read_file\", \"list_*\"]\n",
        )
        .expect("write");
        assert_eq!(
            check(None).expect("valid"),
            "token subject https://idp.example|alice: tools read_file; resources yes\n\
             every other key: every tool; resources yes\n\
             token scope mcp:files opens: read_file, list_*\n"
        );
        std::fs::write(&path, "[subjects.alice]\n").expect("write");
        assert_eq!(
            check(None).expect_err("no issuer"),
            ["policy: subjects.alice: not an issuer|subject pair"]
        );
        std::fs::write(
            &path,
            "[keys.cli-1]\nrate_limit = \"often\"\ntools = [\"[\"]\n",
        )
        .expect("write");
        assert_eq!(check(None).expect_err("bad").len(), 2);
    }
}
