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
    let (errors, partial) = parse(text, |id| id != "ghost").expect_err("three problems in alice");
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

#[test]
fn a_file_that_cannot_be_read_denies_the_subjects_it_named_and_keeps_the_scopes() {
    let before = parse(
        "[subjects.\"https://idp|alice\"]\ntools = [\"*\"]\n[scopes.s]\ntools = [\"read_file\"]\n",
        |_| true,
    )
    .expect("valid");
    let after = Policies::fail_closed(&before);
    let alice = after.rules_for_token("https://idp|alice", &["s".into()]);
    assert!(!alice.allows_tool("read_file"), "a named subject is denied");
    let other = after.rules_for_token("https://idp|bob", &["s".into()]);
    assert!(other.allows_tool("read_file") && !other.allows_tool("search_files"));
}
