//! Micro-benchmarks of the hot policies: key verification, the rate limiter, argument schema
//! validation and sandbox path resolution. `cargo bench --bench policies`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use secure_mcp_server::files::sandbox::Sandbox;
use secure_mcp_server::mcp::request_state::StateSealer;
use secure_mcp_server::mcp::version::Era;
use secure_mcp_server::security::auth::{ApiKeys, KeyId};
use secure_mcp_server::security::rate_limit::{Policy, RateLimiter};
use secure_mcp_server::tools::registry::{
    Tool, ToolContext, ToolDefinition, ToolFuture, ToolOutput, ToolRegistry,
};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

fn keys(n: usize) -> (ApiKeys, String) {
    let all: Vec<(KeyId, String)> = (0..n)
        .map(|i| {
            (
                KeyId::new(format!("k{i}")),
                secure_mcp_server::keys::generate_key().expect("rng"),
            )
        })
        .collect();
    let last = all.last().map(|(_, k)| k.clone()).unwrap_or_default();
    (ApiKeys::from_plain(all), last)
}

fn key_verification(c: &mut Criterion) {
    for n in [1, 100] {
        let (keys, key) = keys(n);
        c.bench_function(&format!("ApiKeys::verify, {n} keys, valid"), |b| {
            b.iter(|| keys.verify(std::hint::black_box(&key)))
        });
        c.bench_function(&format!("ApiKeys::verify, {n} keys, wrong"), |b| {
            b.iter(|| {
                keys.verify(std::hint::black_box(
                    "smcp_wrong-key-0000000000000000000000000000000000",
                ))
            })
        });
    }
}

fn rate_limiter(c: &mut Criterion) {
    let policy = Policy {
        limit: u32::MAX,
        window: Duration::from_secs(60),
        max_clients: 2_000_000,
        ipv6_prefix: 64,
    };
    let epoch = Instant::now();
    for tracked in [1u32, 1_000_000] {
        let limiter = RateLimiter::new(policy, epoch);
        for i in 0..tracked {
            limiter.check(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), epoch);
        }
        let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + tracked / 2));
        let now = epoch + Duration::from_secs(1);
        c.bench_function(
            &format!("RateLimiter::check, {tracked} tracked clients"),
            |b| b.iter(|| limiter.check(std::hint::black_box(client), now)),
        );
    }
}

struct Typed;

impl Tool for Typed {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "typed",
            title: "typed",
            description: "a schema like read_file's",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "path": { "type": "string", "minLength": 1, "maxLength": 4096 },
                    "offset": { "type": "integer", "minimum": 0 },
                    "length": { "type": "integer", "minimum": 1, "maximum": 1048576 }
                },
                "required": ["path"],
                "additionalProperties": false
            }),
            read_only: true,
            requires_client: &[],
        }
    }
    fn call(&self, _arguments: Map<String, Value>, _ctx: ToolContext) -> ToolFuture {
        Box::pin(async { Ok(ToolOutput::text("ok")) })
    }
}

fn schema_validation(c: &mut Criterion) {
    let mut registry = ToolRegistry::new();
    registry.register(Typed);
    let sealer = StateSealer::random().expect("rng");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let valid =
        json!({"name": "typed", "arguments": {"path": "docs/a.txt", "offset": 10, "length": 100}});
    let invalid = json!({"name": "typed", "arguments": {"path": "", "offset": -1, "extra": true}});
    for (label, params) in [("valid", valid), ("invalid", invalid)] {
        let params = params.as_object().cloned().expect("object");
        c.bench_function(
            &format!("tools/call argument validation + call, {label} arguments"),
            |b| {
                b.iter(|| {
                    runtime.block_on(registry.call(
                        &params,
                        ToolContext::detached(Era::Modern, KeyId::new("k")),
                        &sealer,
                    ))
                })
            },
        );
    }
}

fn sandbox_resolution(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("docs");
    std::fs::create_dir_all(root.join("a/b/c")).expect("mkdir");
    std::fs::write(root.join("a/b/c/file.txt"), "x").expect("write");
    let sandbox = Sandbox::new(&[root]).expect("sandbox");
    c.bench_function("Sandbox::resolve, 4 levels deep", |b| {
        b.iter(|| sandbox.resolve(std::hint::black_box("docs/a/b/c/file.txt")))
    });
    c.bench_function("Sandbox::resolve, refused '..'", |b| {
        b.iter(|| sandbox.resolve(std::hint::black_box("docs/../etc/passwd")))
    });
}

criterion_group!(
    benches,
    key_verification,
    rate_limiter,
    schema_validation,
    sandbox_resolution
);
criterion_main!(benches);
