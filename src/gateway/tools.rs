//! The upstream's tools as a [`ToolProvider`]: `tools/list` is what the upstream offered at
//! start-up minus every tool whose definition does not match its pin; a call goes to the
//! caller's own upstream process, and only if that process still offers the tool with the
//! pinned definition. Progress from the upstream reaches the caller's request; a call the
//! client abandons is cancelled upstream; the upstream's result must be a `CallToolResult`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::child::Inbound;
use super::pins::{DIGEST_META, Pins, digest};
use super::pool::{Pool, Running};
use crate::error::RpcError;
use crate::mcp::context::{ToolContext, capability_for};
use crate::mcp::events::LogLevel;
use crate::mcp::headers::ParamHeader;
use crate::mcp::jsonrpc::string_param;
use crate::mcp::request_state::StateSealer;
use crate::tools::registry::{ToolProvider, check_arguments, result};

/// Messages from the upstream (progress, log, its own requests) one call may have waiting.
const INBOUND_BUFFER: usize = 16;

/// A listed tool: the upstream that has it, its name there, its schema compiled once.
struct Exposed {
    upstream: usize,
    name: String,
    schema: jsonschema::Validator,
}

/// One upstream as the gateway saw it at start: the name that prefixes its tools (with
/// several upstreams), its pool, and what its first process listed.
pub struct Seen {
    pub prefix: Option<String>,
    pub pool: Arc<Pool>,
    pub probe: Running,
}

impl Seen {
    /// The name a client sees for the upstream's tool `name`.
    pub fn exposed(&self, name: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}__{name}"),
            None => name.to_owned(),
        }
    }

    /// The pins of what the upstream listed, by the names clients see.
    pub fn pins(&self) -> Pins {
        self.probe
            .tools
            .iter()
            .map(|(name, digest)| (self.exposed(name), digest.clone()))
            .collect()
    }
}

/// The tools of the upstream servers.
pub struct GatewayTools {
    pools: Vec<Arc<Pool>>,
    /// By the names clients see: the digest of the upstream's own definition.
    pins: Pins,
    listed: Vec<Value>,
    tools: HashMap<String, Exposed>,
}

impl std::fmt::Debug for GatewayTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayTools")
            .field("tools", &self.tools.len())
            .finish_non_exhaustive()
    }
}

/// Logs a tool whose definition no longer matches its pin.
pub fn report_changed(tool: &str, principal: Option<&str>) {
    tracing::warn!(
        target: "security",
        event = "tool_definition_changed",
        tool = %crate::observability::audit::event::cut(tool),
        principal = principal.unwrap_or("-"),
        "an upstream tool's definition differs from its pin: the tool is withheld until it is pinned again"
    );
}

impl GatewayTools {
    /// The tools the upstreams offered that match `pins` (every one, with pins taken from
    /// them, when `pins` is `None`), each under the name clients see and with the digest of
    /// that entry in `_meta`.
    pub fn new(upstreams: &[Seen], pins: Option<Pins>) -> Self {
        let pins = pins.unwrap_or_else(|| upstreams.iter().flat_map(Seen::pins).collect());
        let mut listed = Vec::new();
        let mut tools = HashMap::new();
        for (index, seen) in upstreams.iter().enumerate() {
            for tool in &seen.probe.listed {
                let Some(name) = tool["name"].as_str() else {
                    continue;
                };
                let exposed = seen.exposed(name);
                if pins.get(&exposed) != Some(&digest(tool)) {
                    report_changed(&exposed, None);
                    continue;
                }
                // Arguments are checked here before any process sees them; a schema that does
                // not compile (or needs a remote `$ref`) withholds its tool.
                let Ok(schema) = jsonschema::validator_for(&tool["inputSchema"]) else {
                    tracing::warn!(target: "upstream", tool = %crate::observability::audit::event::cut(&exposed),
                        "an upstream tool's input schema does not compile here: the tool is withheld");
                    continue;
                };
                let mut entry = tool.clone();
                entry["name"] = json!(exposed);
                entry["_meta"] = json!({ DIGEST_META: digest(&entry) });
                listed.push(entry);
                tools.insert(
                    exposed,
                    Exposed {
                        upstream: index,
                        name: name.to_owned(),
                        schema,
                    },
                );
            }
        }
        Self {
            pools: upstreams.iter().map(|u| u.pool.clone()).collect(),
            pins,
            listed,
            tools,
        }
    }

    async fn call_upstream(
        &self,
        params: &Map<String, Value>,
        ctx: ToolContext,
    ) -> Result<Value, RpcError> {
        let name = string_param(params, "name", "tools/call needs a string 'name'")?;
        let exposed = self
            .tools
            .get(name)
            .ok_or(RpcError::InvalidParams("unknown tool".into()))?;
        let pool = &self.pools[exposed.upstream];
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(Value::Object(map)) => Value::Object(map.clone()),
            Some(_) => {
                return Err(RpcError::InvalidParams(
                    "'arguments' must be an object".into(),
                ));
            }
        };
        if let Some(refusal) = check_arguments(&exposed.schema, &arguments) {
            return Ok(result(Err(refusal)));
        }
        let running = pool.process_for(&ctx.caller, ctx.session()).await?;
        if running.tools.get(&exposed.name) != self.pins.get(name) {
            pool.definitions_changed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            report_changed(name, Some(ctx.caller.name()));
            return Err(RpcError::InvalidParams("unknown tool".into()));
        }
        let (inbound, mut heard) = mpsc::channel(INBOUND_BUFFER);
        let wants_progress = ctx.progress_token.is_some();
        let call = running.upstream.request(
            "tools/call",
            json!({ "name": exposed.name, "arguments": arguments }),
            Some((inbound, wants_progress)),
        );
        tokio::pin!(call);
        // What the upstream sent before its result is delivered before the result.
        let outcome = loop {
            tokio::select! {
                biased;
                Some(message) = heard.recv() => deliver(&ctx, message).await,
                outcome = &mut call => break outcome,
            }
        };
        while let Ok(message) = heard.try_recv() {
            deliver(&ctx, message).await;
        }
        match outcome {
            Ok(result) if is_call_tool_result(&result) => Ok(result),
            Ok(_) => Err(RpcError::Upstream(
                "the upstream server sent a result that is not a tool result",
            )),
            Err(Ok(error)) => Err(match error["code"].as_i64() {
                Some(-32602) => {
                    RpcError::InvalidParams("the upstream server refused the call".into())
                }
                _ => RpcError::Upstream("the upstream server answered with an error"),
            }),
            Err(Err(e)) => Err(e),
        }
    }
}

/// Passes what the upstream sent during a call to the call's client: progress, log messages
/// (at the level the client asked for), and the upstream's own requests, relayed only if the
/// client declared the capability they need (else refused, so the upstream does not wait).
async fn deliver(ctx: &ToolContext, message: Inbound) {
    match message {
        Inbound::Progress(update) => {
            let at = update["progress"].as_f64().unwrap_or(0.0);
            ctx.progress(at, update["total"].as_f64(), update["message"].as_str())
                .await;
        }
        Inbound::Log(params) => {
            if let Some(level) = params["level"].as_str().and_then(LogLevel::parse) {
                let logger = params["logger"].as_str().unwrap_or("upstream");
                ctx.log(level, logger, params["data"].clone()).await;
            }
        }
        Inbound::Ask {
            method,
            params,
            answer,
        } => {
            let declared = capability_for(&method)
                .is_some_and(|cap| ctx.client_capabilities.contains_key(cap));
            let reply = match declared {
                true => ctx
                    .ask_client(&method, params)
                    .await
                    .map_err(|_| json!({ "code": -32603, "message": "the client did not answer" })),
                false => Err(json!({ "code": -32601, "message": "Method not found" })),
            };
            let _ = answer.send(reply);
        }
    }
}

/// Whether `value` has the shape of a `CallToolResult` (content blocks with a type each).
fn is_call_tool_result(value: &Value) -> bool {
    value["content"]
        .as_array()
        .is_some_and(|blocks| blocks.iter().all(|b| b["type"].is_string()))
        && value.get("isError").is_none_or(Value::is_boolean)
}

impl ToolProvider for GatewayTools {
    fn listed(&self) -> &[Value] {
        &self.listed
    }

    fn call<'a>(
        &'a self,
        params: &'a Map<String, Value>,
        ctx: ToolContext,
        _sealer: &'a StateSealer,
    ) -> Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send + 'a>> {
        Box::pin(self.call_upstream(params, ctx))
    }

    fn param_headers(&self, _name: &str) -> &[ParamHeader] {
        &[]
    }
}
