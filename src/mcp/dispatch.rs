//! Method → handler, for both eras; capabilities; `server/discover` and `initialize`.
//!
//! Which methods exist depends on the era of the request:
//! - modern (2026-07-28): `server/discover`, `tools/*`, `resources/*`. The methods that revision
//!   removed (`initialize`, `ping`, `logging/setLevel`, `resources/subscribe`, …) are unknown
//!   here (`-32601`, HTTP 404);
//! - legacy: `initialize` (answered by the transport, which also mints the session), `ping`,
//!   `tools/*`, `resources/*`.
//!
//! `resources/*` exist only when directories are allowed (otherwise the capability is not
//! advertised and the methods are unknown). Modern results carry `resultType`, the server's
//! identity in `_meta`, and on list/read results `ttlMs` and `cacheScope`. Lists that do not
//! depend on the caller are `public`; anything derived from file contents is `private`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::mcp::jsonrpc::Request;
use crate::mcp::resources::{FileResources, cursor_param};
use crate::mcp::version::{Era, ProtocolVersion};
use crate::tools::registry::ToolRegistry;

pub const SERVER_NAME: &str = "secure-mcp-server";
const INSTRUCTIONS: &str = "Read-only access to the files in the allowed directories \
    (paths are '<root>/<relative path>'; list_directory with '/' shows the roots) and to system \
    information.";

/// How long clients may cache a list: tools never change while the server runs.
const TOOLS_TTL_MS: u64 = 300_000;
/// Files change underneath us; a short hint.
const FILES_TTL_MS: u64 = 5_000;
const DISCOVER_TTL_MS: u64 = 300_000;

/// The protocol engine: tools, resources and the fixed parts of every answer.
pub struct McpServer {
    tools: ToolRegistry,
    resources: Option<FileResources>,
    capabilities: Value,
    server_info: Value,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

impl McpServer {
    pub fn new(tools: ToolRegistry, resources: Option<FileResources>) -> Arc<Self> {
        let mut capabilities = json!({ "tools": { "listChanged": false } });
        if resources.is_some() {
            capabilities["resources"] = json!({ "subscribe": false, "listChanged": false });
        }
        Arc::new(Self {
            tools,
            resources,
            capabilities,
            server_info: json!({ "name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION") }),
        })
    }

    /// The legacy `initialize` result for a negotiated version.
    pub fn initialize_result(&self, version: ProtocolVersion) -> Value {
        json!({
            "protocolVersion": version.as_str(),
            "capabilities": self.capabilities,
            "serverInfo": self.server_info,
            "instructions": INSTRUCTIONS,
        })
    }

    fn resources(&self) -> Result<&FileResources, RpcError> {
        self.resources.as_ref().ok_or(RpcError::MethodNotFound)
    }

    /// Answers one request of the given era (the transport has already checked headers,
    /// `_meta` and the session).
    pub async fn handle(&self, request: &Request, era: Era) -> Result<Value, RpcError> {
        let params = &request.params;
        let (result, cache) =
            match (era, request.method.as_str()) {
                (Era::Modern, "server/discover") => {
                    (self.discover(), Some((DISCOVER_TTL_MS, "public")))
                }
                (Era::Legacy, "ping") => (json!({}), None),
                (_, "tools/list") => {
                    first_page_only(params)?;
                    (
                        json!({ "tools": self.tools.listed() }),
                        Some((TOOLS_TTL_MS, "public")),
                    )
                }
                (_, "tools/call") => {
                    let declared = match era {
                        Era::Modern => Some(client_capabilities(params)),
                        Era::Legacy => None,
                    };
                    (self.tools.call(params, declared).await?, None)
                }
                (_, "resources/list") => {
                    let cursor = cursor_param(params)?;
                    (
                        self.resources()?.list(cursor).await?,
                        Some((FILES_TTL_MS, "private")),
                    )
                }
                (_, "resources/templates/list") => {
                    first_page_only(params)?;
                    (
                        self.resources()?.templates(),
                        Some((TOOLS_TTL_MS, "public")),
                    )
                }
                (_, "resources/read") => {
                    let uri = params.get("uri").and_then(Value::as_str).ok_or(
                        RpcError::InvalidParams("resources/read needs a string 'uri'".into()),
                    )?;
                    (
                        self.resources()?.read(uri).await?,
                        Some((FILES_TTL_MS, "private")),
                    )
                }
                _ => return Err(RpcError::MethodNotFound),
            };
        Ok(match era {
            Era::Legacy => result,
            Era::Modern => self.modern_result(result, cache),
        })
    }

    fn discover(&self) -> Value {
        json!({
            "supportedVersions": ProtocolVersion::supported_strings(),
            "capabilities": self.capabilities,
            "instructions": INSTRUCTIONS,
        })
    }

    /// Adds the fields every 2026-07-28 result carries.
    fn modern_result(&self, mut result: Value, cache: Option<(u64, &str)>) -> Value {
        if let Value::Object(map) = &mut result {
            map.insert("resultType".into(), json!("complete"));
            if let Some((ttl, scope)) = cache {
                map.insert("ttlMs".into(), json!(ttl));
                map.insert("cacheScope".into(), json!(scope));
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

/// The client capabilities a 2026-07-28 request declared in `_meta` (empty if none).
fn client_capabilities(params: &Map<String, Value>) -> &Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    params
        .get("_meta")
        .and_then(|m| m.get("io.modelcontextprotocol/clientCapabilities"))
        .and_then(Value::as_object)
        .unwrap_or(&EMPTY)
}

/// For single-page lists: no cursor, or the empty cursor (the start); anything else is invalid.
fn first_page_only(params: &Map<String, Value>) -> Result<(), RpcError> {
    match cursor_param(params)? {
        None | Some("") => Ok(()),
        Some(_) => Err(RpcError::InvalidParams("invalid cursor".into())),
    }
}
