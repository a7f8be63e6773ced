//! `secure-mcp-server check`: probes a running server (this one or another MCP server) from the
//! outside and prints PASS or FAIL per defence, then `check: N passed, M failed`. It exits 0
//! only if every check passed.
//!
//! The rate-limit probe spends the client's request budget, so it runs only with
//! `--rate-limit`, and sends at most `--max-requests` requests.
//!
//! It speaks HTTPS (rustls with the `ring` provider, the server's own; certificates are checked
//! against the system's roots, plus `--ca-cert` for a private CA or a self-signed certificate),
//! since an operator should run it against the `https://` URL clients use.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The MCP endpoint, e.g. http://127.0.0.1:8080/mcp
    #[arg(long)]
    pub url: String,
    /// A valid key for that server.
    #[arg(
        long,
        env = "MCP_CHECK_API_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub api_key: String,
    /// Also check that the rate limit answers 429 with Retry-After (spends the quota).
    #[arg(long)]
    pub rate_limit: bool,
    /// The most requests the rate-limit probe sends.
    #[arg(long, default_value_t = 1000)]
    pub max_requests: u32,
    /// A PEM certificate to trust besides the system's roots (a private CA, a self-signed
    /// server certificate).
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// The HTTP(S) client of the probes.
fn client(ca_cert: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    // The server's provider for the client too (a second installation is a no-op).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-cert: {}", e.kind()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|_| "--ca-cert: not a PEM certificate".to_owned())?;
        builder = builder.tls_certs_merge([cert]);
    }
    builder.build().map_err(|e| e.to_string())
}

struct Probe {
    client: reqwest::Client,
    url: reqwest::Url,
    key: String,
    passed: u32,
    failed: u32,
    /// Every response seen, for the disclosure check.
    seen: Vec<(reqwest::header::HeaderMap, String)>,
}

fn discover_body() -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{
        "io.modelcontextprotocol/protocolVersion":"2026-07-28",
        "io.modelcontextprotocol/clientCapabilities":{}}}})
}

impl Probe {
    fn report(&mut self, name: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.passed += 1;
                println!("PASS  {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL  {name}: {why}");
            }
        }
    }

    async fn post(
        &mut self,
        auth: Option<&str>,
        origin: Option<&str>,
        body: String,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap), String> {
        let mut req = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "server/discover")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let (status, headers, _) = self.send(req).await?;
        Ok((status, headers))
    }

    /// Sends a request and keeps its response for the disclosure check.
    async fn send(
        &mut self,
        req: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, String), String> {
        let resp = req
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        self.seen.push((headers.clone(), text.clone()));
        Ok((status, headers, text))
    }

    async fn health(&mut self) -> Result<(), String> {
        let url = self.url.join("/health").map_err(|e| e.to_string())?;
        let request = self.client.get(url);
        let (status, _, text) = self.send(request).await?;
        if status != StatusCode::OK {
            return Err(format!("status {status}"));
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v == json!({"status": "ok"}) => Ok(()),
            _ => Err("the body says more than {\"status\":\"ok\"}".into()),
        }
    }

    async fn expect_status(
        &mut self,
        auth: Option<&str>,
        origin: Option<&str>,
        want: StatusCode,
    ) -> Result<reqwest::header::HeaderMap, String> {
        let (status, headers) = self.post(auth, origin, discover_body().to_string()).await?;
        if status == want {
            Ok(headers)
        } else {
            Err(format!("got {status}, expected {want}"))
        }
    }

    fn disclosure(&self) -> Result<(), String> {
        for (headers, body) in &self.seen {
            for name in ["server", "x-powered-by"] {
                if let Some(v) = headers.get(name) {
                    return Err(format!("header {name}: {v:?}"));
                }
            }
            let mut body_value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            if let Some(result) = body_value.get_mut("result").and_then(Value::as_object_mut) {
                result.remove("_meta");
                result.remove("serverInfo");
            }
            let text = body_value.to_string();
            let has_version = text.as_bytes().windows(5).any(|w| {
                w[0].is_ascii_digit()
                    && w[1] == b'.'
                    && w[2].is_ascii_digit()
                    && w[3] == b'.'
                    && w[4].is_ascii_digit()
            });
            if has_version {
                return Err(format!("a version number in a response: {text}"));
            }
            for path in [
                "/home/", "/root/", "/usr/", "/etc/", "/var/", "/tmp/", "src/", "panicked",
            ] {
                if text.contains(path) {
                    return Err(format!("'{path}' in a response"));
                }
            }
        }
        Ok(())
    }

    async fn rate_limit(&mut self, max: u32) -> Result<(), String> {
        let auth = format!("Bearer {}", self.key);
        for sent in 1..=max {
            let (status, headers) = self
                .post(Some(&auth), None, discover_body().to_string())
                .await?;
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry = headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                return match retry {
                    Some(s) if s >= 1 => {
                        println!("      (429 after {sent} requests, Retry-After: {s})");
                        Ok(())
                    }
                    _ => Err("429 without a whole-second Retry-After".into()),
                };
            }
        }
        Err(format!("no 429 after {max} requests"))
    }
}

/// Runs every check; returns whether all passed.
pub async fn run(args: CheckArgs) -> bool {
    let url = match reqwest::Url::parse(&args.url) {
        Ok(u) => u,
        Err(e) => {
            println!("FAIL  --url: {e}");
            println!("check: 0 passed, 1 failed");
            return false;
        }
    };
    let client = match client(args.ca_cert.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            println!("FAIL  http client: {e}");
            println!("check: 0 passed, 1 failed");
            return false;
        }
    };
    let mut p = Probe {
        client,
        url,
        key: args.api_key,
        passed: 0,
        failed: 0,
        seen: Vec::new(),
    };
    let valid = format!("Bearer {}", p.key);

    let r = p.health().await;
    p.report(
        "health endpoint reachable, says only {\"status\":\"ok\"}",
        r,
    );
    let r = p
        .expect_status(None, None, StatusCode::UNAUTHORIZED)
        .await
        .and_then(
            |h| match h.get("www-authenticate").and_then(|v| v.to_str().ok()) {
                Some(v) if v.starts_with("Bearer") => Ok(()),
                _ => Err("401 without WWW-Authenticate: Bearer".into()),
            },
        );
    p.report("auth required: no key -> 401 with a Bearer challenge", r);
    let r = p
        .expect_status(
            Some("Bearer not-the-right-key-0000000000"),
            None,
            StatusCode::UNAUTHORIZED,
        )
        .await
        .map(drop);
    p.report("auth required: wrong key -> 401", r);
    let r = p
        .expect_status(Some(&valid), None, StatusCode::OK)
        .await
        .map(drop);
    p.report("valid key works: server/discover -> 200", r);
    let r = p
        .expect_status(
            Some(&valid),
            Some("https://evil.example"),
            StatusCode::FORBIDDEN,
        )
        .await
        .map(drop);
    p.report("foreign Origin -> 403", r);
    let r = p
        .post(Some(&valid), None, "{not json".into())
        .await
        .and_then(|(s, _)| {
            if s == StatusCode::BAD_REQUEST {
                Ok(())
            } else {
                Err(format!("got {s}, expected 400"))
            }
        });
    p.report("malformed JSON -> 400", r);
    let r = p.disclosure();
    p.report("no version, path or stack trace disclosed", r);
    if args.rate_limit {
        let r = p.rate_limit(args.max_requests).await;
        p.report("rate limit -> 429 with Retry-After", r);
    }
    println!("check: {} passed, {} failed", p.passed, p.failed);
    p.failed == 0
}
