//! The server with `--oauth-issuer`: tokens beside keys on `/mcp`, the challenges of its 401s
//! and 403s, its Protected Resource Metadata, and a caller named by issuer and subject.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use secure_mcp_server::app::AppState;
use secure_mcp_server::config::{Cli, Config};
use serde_json::{Value, json};

use crate::oauth::{Issuer, SigningKey, sign};
use crate::support::{Harness, KEY, MODERN, Reply};

const METADATA: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

/// A server that accepts `issuer`'s tokens for https://mcp.example.com/mcp, with `extra`.
fn server(issuer: &Issuer, extra: &[&str]) -> Harness {
    let mut args = vec![
        "--oauth-issuer",
        &issuer.url,
        "--public-url",
        "https://mcp.example.com/mcp",
    ];
    args.extend_from_slice(extra);
    Harness::with_args(&args)
}

/// A 2026 `tools/list` with `authorization` (a whole header value), or none.
async fn list(h: &Harness, authorization: Option<&str>, uri: &str) -> Reply {
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {} });
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta": meta}});
    let mut b = Request::post(uri)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/list");
    if let Some(value) = authorization {
        b = b.header("authorization", value);
    }
    h.send(b.body(Body::from(body.to_string())).expect("request"))
        .await
}

fn challenge(reply: &Reply) -> String {
    reply
        .header("www-authenticate")
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_valid_token_calls_and_a_key_still_does() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let h = server(&issuer, &[]);
    let token = sign(&key, &issuer.claims());
    let reply = list(&h, Some(&format!("Bearer {token}")), "/mcp").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.json()["result"]["tools"].is_array());
    let keyed = list(&h, Some(&format!("Bearer {KEY}")), "/mcp").await;
    assert_eq!(keyed.status, StatusCode::OK);
}

#[tokio::test]
async fn every_401_points_to_the_metadata_and_says_what_to_fix() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let h = server(&issuer, &["--oauth-scopes", "mcp:tools"]);

    let none = list(&h, None, "/mcp").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&none),
        format!("Bearer resource_metadata=\"{METADATA}\", scope=\"mcp:tools\"")
    );

    let mut claims = issuer.claims();
    claims["exp"] = json!(jsonwebtoken::get_current_timestamp() - 600);
    claims["scope"] = json!("mcp:tools");
    let expired = sign(&key, &claims);
    let reply = list(&h, Some(&format!("Bearer {expired}")), "/mcp").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let text = challenge(&reply);
    assert!(text.contains("error=\"invalid_token\""), "{text}");
    assert!(
        text.contains("error_description=\"the token has expired\""),
        "{text}"
    );
    assert!(text.contains(METADATA), "{text}");
    assert!(!reply.text.contains(&expired) && !text.contains(&expired));

    // A token in the query string is not a credential.
    let token = sign(&key, &issuer.claims());
    let query = list(&h, None, &format!("/mcp?access_token={token}")).await;
    assert_eq!(query.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_without_a_required_scope_gets_403_naming_every_scope() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let h = server(&issuer, &["--oauth-scopes", "mcp:tools,files:read"]);
    let mut claims = issuer.claims();
    claims["scope"] = json!("mcp:tools");
    let reply = list(&h, Some(&format!("Bearer {}", sign(&key, &claims))), "/mcp").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let text = challenge(&reply);
    assert!(
        text.starts_with("Bearer error=\"insufficient_scope\""),
        "{text}"
    );
    assert!(text.contains("scope=\"mcp:tools files:read\""), "{text}");
    claims["scope"] = json!("files:read other mcp:tools");
    let reply = list(&h, Some(&format!("Bearer {}", sign(&key, &claims))), "/mcp").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn the_metadata_names_the_resource_the_client_used_and_the_issuers() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let h = server(&issuer, &["--oauth-scopes", "mcp:tools"]);
    for (path, resource) in [
        (
            "/.well-known/oauth-protected-resource/mcp",
            "https://mcp.example.com/mcp",
        ),
        (
            "/.well-known/oauth-protected-resource",
            "https://mcp.example.com",
        ),
    ] {
        let reply = h
            .send(
                Request::get(path)
                    .header("origin", "https://inspector.example")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("*"),
            "a browser client of any origin may read it"
        );
        let doc: Value = reply.json();
        assert_eq!(doc["resource"], resource);
        assert_eq!(doc["authorization_servers"], json!([issuer.url]));
        assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    // Without --oauth-issuer there is no such document.
    let plain = Harness::new();
    let reply = plain
        .send(
            Request::get("/.well-known/oauth-protected-resource/mcp")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_session_belongs_to_the_tokens_subject() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let h = server(&issuer, &[]);
    let alice = format!("Bearer {}", sign(&key, &issuer.claims()));
    let mut claims = issuer.claims();
    claims["sub"] = json!("mallory");
    let mallory = format!("Bearer {}", sign(&key, &claims));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name":"it","version":"1"}}});
    let post = |auth: &str, session: Option<&str>, body: &Value| {
        let mut b = Request::post("/mcp")
            .header("authorization", auth)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = session {
            b = b.header("mcp-session-id", s);
        }
        b.body(Body::from(body.to_string())).expect("request")
    };
    let reply = h.send(post(&alice, None, &init)).await;
    let session = reply.header("mcp-session-id").expect("session").to_owned();
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"});
    assert_eq!(
        h.send(post(&alice, Some(&session), &ping)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.send(post(&mallory, Some(&session), &ping)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn with_keys_off_only_tokens_call() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let argv = [
        "secure-mcp-server",
        "--no-api-keys",
        "--oauth-issuer",
        &issuer.url,
        "--public-url",
        "https://mcp.example.com/mcp",
    ];
    let config = Config::from_cli(Cli::try_parse_from(argv).expect("cli"), None).expect("config");
    assert!(config.keys.keys.is_empty(), "no key is generated");
    let state = AppState::from_config(&config).expect("state");
    let h = Harness::from_state(state);
    let token = sign(&key, &issuer.claims());
    assert_eq!(
        list(&h, Some(&format!("Bearer {token}")), "/mcp")
            .await
            .status,
        StatusCode::OK
    );
    let keyed = list(&h, Some(&format!("Bearer {KEY}")), "/mcp").await;
    assert_eq!(keyed.status, StatusCode::UNAUTHORIZED);
}

/// The tool names a `tools/list` reply lists.
fn names(reply: &Reply) -> Vec<String> {
    reply.json()["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {}", reply.text))
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn the_policy_names_token_subjects_and_what_each_scope_opens() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[subjects.\"{}|restricted\"]\ntools = [\"read_file\", \"list_directory\"]\n\
             [scopes.\"mcp:files\"]\ntools = [\"read_file\", \"list_*\", \"stat_path\"]\n\
             [scopes.\"mcp:system\"]\ntools = [\"system_info\"]\n",
            issuer.url
        ),
    )
    .expect("write");
    let policy = policy.to_string_lossy().into_owned();
    let h = server(&issuer, &["--policy", &policy]);
    let token = |sub: &str, scope: &str| {
        let mut claims = issuer.claims();
        claims["sub"] = json!(sub);
        claims["scope"] = json!(scope);
        format!("Bearer {}", sign(&key, &claims))
    };
    let listed = |auth: String| {
        let h = &h;
        async move { names(&list(h, Some(&auth), "/mcp").await) }
    };
    // A scope opens its tools; two scopes, both sets.
    assert_eq!(listed(token("anyone", "mcp:system")).await, ["system_info"]);
    let mut both = listed(token("anyone", "mcp:files mcp:system other")).await;
    both.sort();
    assert_eq!(
        both,
        ["list_directory", "read_file", "stat_path", "system_info"]
    );
    // No scope the policy knows: no tool.
    assert!(listed(token("anyone", "other")).await.is_empty());
    // A subject's entry narrows further: its tools, within its token's scopes.
    let mut restricted = listed(token("restricted", "mcp:files mcp:system")).await;
    restricted.sort();
    assert_eq!(restricted, ["list_directory", "read_file"]);
    // The keys keep their own rules (no entry: every tool).
    let keyed = names(&list(&h, Some(&format!("Bearer {KEY}")), "/mcp").await);
    assert!(keyed.len() >= 5, "{keyed:?}");
}

/// A server that also introspects opaque tokens at the issuer, as `client` (id, secret).
fn introspecting(issuer: &Issuer, client: (&str, &str)) -> Harness {
    let endpoint = format!("{}/introspect", issuer.url);
    let argv = [
        "secure-mcp-server",
        "--api-key",
        KEY,
        "--oauth-issuer",
        &issuer.url,
        "--public-url",
        "https://mcp.example.com/mcp",
        "--oauth-introspection-url",
        &endpoint,
        "--oauth-client-id",
        client.0,
    ];
    let secret = client.1.to_owned();
    let config = Config::from_cli_with(Cli::try_parse_from(argv).expect("cli"), |name| {
        (name == "MCP_OAUTH_CLIENT_SECRET").then(|| secret.clone())
    })
    .expect("config");
    Harness::from_state(AppState::from_config(&config).expect("state"))
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_the_answer_checked_like_a_jwt() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |aud: &str| {
        json!({ "iss": issuer.url, "sub": "svc-7", "aud": aud, "exp": now + 300,
                "scope": "mcp:tools" })
    };
    issuer.knows_opaque(
        "opaque-good-7Vx9fQ2mZ7pL4wR8",
        claims("https://mcp.example.com/mcp"),
    );
    issuer.knows_opaque(
        "opaque-other-Hs5dG1aK9eU7oI3r",
        claims("https://elsewhere.example"),
    );
    let h = introspecting(&issuer, crate::oauth::CLIENT);

    let good = list(&h, Some("Bearer opaque-good-7Vx9fQ2mZ7pL4wR8"), "/mcp").await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text);
    let again = list(&h, Some("Bearer opaque-good-7Vx9fQ2mZ7pL4wR8"), "/mcp").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        issuer.introspections(),
        1,
        "an accepted answer is remembered"
    );

    for (token, says) in [
        ("opaque-unknown-Nq4vC8bM2lF6jD0s", "not active"),
        ("opaque-other-Hs5dG1aK9eU7oI3r", "not meant for this server"),
    ] {
        let reply = list(&h, Some(&format!("Bearer {token}")), "/mcp").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token}");
        assert!(challenge(&reply).contains(says), "{}", challenge(&reply));
    }
    // A key is still a key, and is never sent to the endpoint.
    let before = issuer.introspections();
    assert_eq!(
        list(&h, Some(&format!("Bearer {KEY}")), "/mcp")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(issuer.introspections(), before);
}

#[tokio::test]
async fn a_server_the_endpoint_does_not_know_refuses_opaque_tokens() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&[&key]).await;
    let now = jsonwebtoken::get_current_timestamp();
    issuer.knows_opaque(
        "opaque-good-7Vx9fQ2mZ7pL4wR8",
        json!({ "iss": issuer.url, "sub": "svc-7", "aud": "https://mcp.example.com/mcp",
                "exp": now + 300 }),
    );
    let h = introspecting(&issuer, ("mcp-server", "a-wrong-secret-Zq81xUvBn4"));
    let reply = list(&h, Some("Bearer opaque-good-7Vx9fQ2mZ7pL4wR8"), "/mcp").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&reply).contains("cannot be reached"),
        "{}",
        challenge(&reply)
    );
}
