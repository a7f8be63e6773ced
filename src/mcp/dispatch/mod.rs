//! Method → handler, for both eras; capabilities; `server/discover` and `initialize`.
//!
//! Which methods exist depends on the era of the request:
//! - modern (2026-07-28): `server/discover`, `tools/*`, `resources/*`, `prompts/*`,
//!   `completion/complete` (and `subscriptions/listen`, a stream the transport answers). The
//!   methods that revision removed (`initialize`, `ping`, `logging/setLevel`,
//!   `resources/subscribe`, …) are unknown here (`-32601`, HTTP 404);
//! - legacy: `initialize` (answered by the transport, which also mints the session), `ping`,
//!   `logging/setLevel`, `resources/subscribe` and `unsubscribe`, and the rest.
//!
//! A capability that is not advertised has no methods: `resources/*` need a resource provider,
//! `prompts/*` a prompt, `completion/complete` either. Modern results carry `resultType`, the
//! server's identity in `_meta`, and on list/read results `ttlMs` and `cacheScope`. Lists that
//! do not depend on the caller are `public`; anything derived from file contents is `private`.

mod builder;
mod complete;
mod passthrough;
mod policy;

pub use builder::McpServerBuilder;
pub use passthrough::Passthrough;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::mcp::context::{Call, ToolContext};
use crate::mcp::events::{ChangeHub, LogLevel};
use crate::mcp::jsonrpc::Request;
use crate::mcp::jsonrpc::string_param;
use crate::mcp::method::Method;
use crate::mcp::prompts::PromptRegistry;
use crate::mcp::request_state::StateSealer;
use crate::mcp::resources::{Resources, cursor_param};
use crate::mcp::tasks;
use crate::mcp::version::{Era, ProtocolVersion};
use crate::security::key_policy::KeyRules;
use crate::tools::registry::{ToolProvider, ToolRegistry};

pub const SERVER_NAME: &str = "secure-mcp-server";
const DEFAULT_INSTRUCTIONS: &str = "Read-only access to the files in the allowed directories \
    (paths are '<root>/<relative path>'; list_directory with '/' shows the roots) and to system \
    information.";

/// `ttlMs` and `cacheScope` of a cacheable result.
type CacheHint = (u64, &'static str);

/// How long clients may cache a list: tools never change while the server runs.
const TOOLS_TTL_MS: u64 = 300_000;
/// Files change underneath us; a short hint.
const FILES_TTL_MS: u64 = 5_000;
const DISCOVER_TTL_MS: u64 = 300_000;

pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// The protocol engine: tools, resources, prompts and the fixed parts of every answer.
pub struct McpServer {
    tools: Arc<dyn ToolProvider>,
    resources: Resources,
    prompts: PromptRegistry,
    capabilities: Value,
    server_info: Value,
    instructions: String,
    changes: ChangeHub,
    sealer: StateSealer,
    /// `cacheScope` of `tools/list`: `private` when each key may see different tools.
    tools_scope: &'static str,
    /// Serialized results that never change: `(method, era)` → the `result` JSON.
    precomputed: std::collections::HashMap<(&'static str, Era), Arc<str>>,
    /// Resources, prompts and completion answered by another server (a gateway's upstream).
    passthrough: Option<Arc<dyn Passthrough>>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("tools", &self.tools.listed().len())
            .field("resources", &self.resources)
            .field("prompts", &self.prompts)
            .finish_non_exhaustive()
    }
}

fn meta(params: &Map<String, Value>) -> Option<&Map<String, Value>> {
    params.get("_meta").and_then(Value::as_object)
}

impl McpServer {
    pub fn builder() -> McpServerBuilder {
        McpServerBuilder::default()
    }

    /// A server with just these tools and resources (the common case).
    pub fn new(tools: ToolRegistry, resources: Resources) -> Arc<Self> {
        McpServerBuilder {
            tools: Arc::new(tools),
            resources,
            ..McpServerBuilder::default()
        }
        .build()
    }

    /// Where list changes and resource updates are announced.
    pub fn changes(&self) -> &ChangeHub {
        &self.changes
    }

    pub fn capabilities(&self) -> &Value {
        &self.capabilities
    }

    /// The tool names, in `tools/list` order.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools
            .listed()
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// The `Mcp-Param-*` headers a `tools/call` of `name` must carry.
    pub fn param_headers(&self, name: &str) -> &[crate::mcp::headers::ParamHeader] {
        self.tools.param_headers(name)
    }

    /// Whether `uri` can be subscribed to (some provider supports subscriptions).
    pub fn supports_subscribe(&self) -> bool {
        self.resources.supports_subscribe()
    }

    pub fn lists_change(&self) -> bool {
        self.capabilities["tools"]["listChanged"] == true
    }

    pub fn has_prompts(&self) -> bool {
        !self.prompts.is_empty()
    }

    pub fn has_resources(&self) -> bool {
        !self.resources.is_empty()
    }

    /// The server's identity, as results carry it.
    pub fn server_info(&self) -> &Value {
        &self.server_info
    }

    /// The legacy `initialize` result for a negotiated version.
    pub fn initialize_result(&self, version: ProtocolVersion) -> Value {
        json!({
            "protocolVersion": version.as_str(),
            "capabilities": self.capabilities,
            "serverInfo": self.server_info,
            "instructions": self.instructions,
        })
    }

    /// Serializes, once, the results that cannot change while the server runs.
    fn precompute(&mut self) {
        let mut lists: Vec<(Method, Value, Option<CacheHint>)> = vec![(
            Method::ToolsList,
            json!({ "tools": self.tools.listed() }),
            Some((TOOLS_TTL_MS, self.tools_scope)),
        )];
        if !self.prompts.is_empty() {
            lists.push((
                Method::PromptsList,
                json!({ "prompts": self.prompts.listed() }),
                Some((TOOLS_TTL_MS, "public")),
            ));
        }
        if !self.resources.is_empty() {
            lists.push((
                Method::ResourcesTemplatesList,
                self.resources.templates(),
                Some((TOOLS_TTL_MS, "public")),
            ));
        }
        let mut out = std::collections::HashMap::new();
        for (method, result, cache) in lists {
            let name = method.known_name().unwrap_or_default();
            out.insert((name, Era::Legacy), Arc::from(result.to_string()));
            out.insert(
                (name, Era::Modern),
                Arc::from(self.modern_result(result, cache).to_string()),
            );
        }
        let discover = self.modern_result(self.discover(), Some((DISCOVER_TTL_MS, "public")));
        out.insert(
            (
                Method::ServerDiscover.known_name().unwrap_or_default(),
                Era::Modern,
            ),
            Arc::from(discover.to_string()),
        );
        self.precomputed = out;
    }

    /// The serialized `result` of `request`, if it is one that never changes (no cursor) for
    /// a caller with these rules.
    pub fn precomputed(&self, request: &Request, era: Era, rules: &KeyRules) -> Option<Arc<str>> {
        if matches!(cursor_param(&request.params), Ok(Some(c)) if !c.is_empty()) {
            return None;
        }
        match request.method {
            Method::ToolsList if !rules.allows_every_tool() => {
                return Some(self.tools_list_for(rules, era));
            }
            // Refused by `handle`, like the other resource methods.
            Method::ResourcesTemplatesList if !rules.resources => return None,
            _ => {}
        }
        let method = request.method.known_name()?;
        self.precomputed.get(&(method, era)).cloned()
    }

    fn require_resources(&self) -> Result<&Resources, RpcError> {
        if self.resources.is_empty() {
            Err(RpcError::MethodNotFound)
        } else {
            Ok(&self.resources)
        }
    }

    fn require_prompts(&self) -> Result<&PromptRegistry, RpcError> {
        if self.prompts.is_empty() {
            Err(RpcError::MethodNotFound)
        } else {
            Ok(&self.prompts)
        }
    }

    /// Whether handling `request` could send the client anything before its result: a
    /// progress token, a log level (the request's, or its 2025 session's), or a 2025 session
    /// whose client declared a capability a tool could ask it to use. Only then does the
    /// request get a stream to emit on (most calls do not, and the channel is the largest
    /// allocation of a call); what cannot emit must match what [`Self::context`] gives a tool.
    pub fn may_emit(request: &Request, call: &Call) -> bool {
        let m = meta(&request.params);
        if m.is_some_and(|m| m.contains_key("progressToken")) {
            return true;
        }
        match call.era {
            Era::Modern => m.is_some_and(|m| m.contains_key(META_LOG_LEVEL)),
            Era::Legacy => call.session.as_ref().is_some_and(|session| {
                session.log_level().is_some()
                    || ["sampling", "elicitation", "roots"]
                        .iter()
                        .any(|cap| session.client_capabilities.contains_key(*cap))
            }),
        }
    }

    /// The tool context of one request.
    fn context(&self, request: &Request, call: &Call) -> Result<ToolContext, RpcError> {
        let mut ctx = ToolContext::announcing(call.era, call.caller.clone(), self.changes.clone());
        ctx.note = call.note.clone();
        let m = meta(&request.params);
        ctx.progress_token = m.and_then(|m| m.get("progressToken")).cloned();
        match call.era {
            Era::Modern => {
                ctx.client_capabilities = m
                    .and_then(|m| m.get(META_CAPABILITIES))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if crate::mcp::tasks::declared(&ctx.client_capabilities) {
                    ctx.tasks = call.tasks.clone();
                }
                ctx.log_level = match m.and_then(|m| m.get(META_LOG_LEVEL)) {
                    None => None,
                    Some(v) => Some(
                        v.as_str()
                            .and_then(LogLevel::parse)
                            .ok_or(RpcError::InvalidParams("invalid log level".into()))?,
                    ),
                };
            }
            Era::Legacy => {
                if let Some(session) = &call.session {
                    ctx.client_capabilities = session.client_capabilities.clone();
                    ctx.log_level = session.log_level();
                    ctx = ctx.with_session(session.clone());
                }
            }
        }
        if let Some(sink) = &call.sink {
            ctx = ctx.with_stream(sink.clone());
        }
        Ok(ctx)
    }

    /// Answers one request (the transport has already checked headers, `_meta` and the
    /// session).
    pub async fn handle(&self, request: &Request, call: Call) -> Result<Value, RpcError> {
        let params = &request.params;
        let era = call.era;
        if let Some((answer, cache)) = self.pass_through(&request.method, params, &call).await {
            return Ok(match era {
                Era::Legacy => answer?,
                Era::Modern => self.modern_result(answer?, cache),
            });
        }
        let (result, cache) = match (era, &request.method) {
            (Era::Modern, Method::ServerDiscover) => {
                (self.discover(), Some((DISCOVER_TTL_MS, "public")))
            }
            (Era::Legacy, Method::Ping) => (json!({}), None),
            (Era::Legacy, Method::LoggingSetLevel) => {
                let level = params
                    .get("level")
                    .and_then(Value::as_str)
                    .and_then(LogLevel::parse)
                    .ok_or(RpcError::InvalidParams("invalid log level".into()))?;
                if let Some(session) = &call.session {
                    session.set_log_level(level);
                }
                (json!({}), None)
            }
            (Era::Legacy, Method::ResourcesSubscribe | Method::ResourcesUnsubscribe) => {
                self.resources_for(&call)?;
                if !self.supports_subscribe() {
                    return Err(RpcError::MethodNotFound);
                }
                let uri = string_param(params, "uri", "a string 'uri' is required")?;
                if let Some(session) = &call.session {
                    if request.method == Method::ResourcesSubscribe {
                        session.subscribe(uri);
                    } else {
                        session.unsubscribe(uri);
                    }
                }
                (json!({}), None)
            }
            (_, Method::ToolsList) => {
                first_page_only(params)?;
                (
                    json!({ "tools": self.listed_tools(&call.rules) }),
                    Some((TOOLS_TTL_MS, self.tools_scope)),
                )
            }
            (_, Method::ToolsCall) => (self.call_tool(request, &call).await?, None),
            (Era::Modern, Method::TasksGet | Method::TasksUpdate | Method::TasksCancel) => {
                let ctx = self.context(request, &call)?;
                let store = call.tasks.as_deref().filter(|_| self.tools.offers_tasks());
                let answer = tasks::methods::answer(
                    store,
                    &request.method,
                    params,
                    &call.caller,
                    &call.rules,
                    &ctx.client_capabilities,
                )
                .await?;
                (answer, None)
            }
            (_, Method::ResourcesList) => {
                let cursor = cursor_param(params)?;
                (
                    self.resources_for(&call)?.list(cursor).await?,
                    Some((FILES_TTL_MS, "private")),
                )
            }
            (_, Method::ResourcesTemplatesList) => {
                first_page_only(params)?;
                (
                    self.resources_for(&call)?.templates(),
                    Some((TOOLS_TTL_MS, "public")),
                )
            }
            (_, Method::ResourcesRead) => {
                let uri = string_param(params, "uri", "resources/read needs a string 'uri'")?;
                (
                    self.resources_for(&call)?.read(uri, &call.note).await?,
                    Some((FILES_TTL_MS, "private")),
                )
            }
            (_, Method::PromptsList) => {
                first_page_only(params)?;
                (
                    json!({ "prompts": self.require_prompts()?.listed() }),
                    Some((TOOLS_TTL_MS, "public")),
                )
            }
            (_, Method::PromptsGet) => {
                let prompts = self.require_prompts()?;
                let ctx = self.context(request, &call)?;
                (prompts.get(params, ctx, &self.sealer).await?, None)
            }
            (_, Method::CompletionComplete) => {
                if !call.rules.resources {
                    return Err(RpcError::MethodNotFound);
                }
                (self.complete(params, &call.note).await?, None)
            }
            _ => return Err(RpcError::MethodNotFound),
        };
        Ok(match era {
            Era::Legacy => result,
            Era::Modern => self.modern_result(result, cache),
        })
    }

    /// The `server/discover` result: the capabilities, and (a 2026-07-28 extension, so not in
    /// the 2025 `initialize` result) the tasks extension when some tool may run as a task.
    fn discover(&self) -> Value {
        let mut capabilities = self.capabilities.clone();
        if self.tools.offers_tasks() {
            capabilities["extensions"] = json!({ tasks::TASKS_EXTENSION: {} });
        }
        json!({
            "supportedVersions": ProtocolVersion::supported_strings(),
            "capabilities": capabilities,
            "instructions": self.instructions,
        })
    }

    /// Adds the fields every 2026-07-28 result carries (`resultType` stays if set, e.g.
    /// `input_required`, which also takes no cache fields).
    pub fn modern_result(&self, mut result: Value, cache: Option<(u64, &str)>) -> Value {
        if let Value::Object(map) = &mut result {
            let complete = !map.contains_key("resultType");
            if complete {
                map.insert("resultType".into(), json!("complete"));
                if let Some((ttl, scope)) = cache {
                    map.insert("ttlMs".into(), json!(ttl));
                    map.insert("cacheScope".into(), json!(scope));
                }
            }
            let meta = map
                .entry("_meta")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(meta) = meta {
                meta.insert(
                    "io.modelcontextprotocol/serverInfo".into(),
                    self.server_info.clone(),
                );
            }
        }
        result
    }
}

/// For single-page lists: no cursor, or the empty cursor (the start); anything else is invalid.
fn first_page_only(params: &Map<String, Value>) -> Result<(), RpcError> {
    match cursor_param(params)? {
        None | Some("") => Ok(()),
        Some(_) => Err(RpcError::InvalidParams("invalid cursor".into())),
    }
}
