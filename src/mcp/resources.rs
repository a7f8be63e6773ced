//! MCP resources: [`ResourceProvider`], the shape of a source of resources, and [`Resources`],
//! which puts the providers together: `resources/list` pages through them in order,
//! `resources/read` asks each in order until one knows the URI. The cursor is opaque to clients
//! (Base64 of a position) and checked: a cursor that does not decode is `-32602`.
//!
//! The files under the allowed directories are one provider ([`crate::files::resources`]);
//! the conformance fixtures and an embedding program's own plug in the same way.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::mcp::context::NoteCell;

pub const PAGE_SIZE: usize = 100;
/// A position as an opaque page cursor.
pub fn encode_cursor(position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("p:{position}"))
}

/// The position of a page cursor (empty: the start); `None` for one we did not hand out.
pub fn decode_cursor(cursor: &str) -> Option<usize> {
    if cursor.is_empty() {
        return Some(0);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("p:")?
        .parse()
        .ok()
}

/// The `cursor` param of a paginated request (absent or empty means the start).
pub fn cursor_param(params: &Map<String, Value>) -> Result<Option<&str>, RpcError> {
    match params.get("cursor") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(c)) => Ok(Some(c)),
        Some(_) => Err(RpcError::InvalidParams("invalid cursor".into())),
    }
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// One page of `resources/list` entries, and the provider's cursor for the next.
pub type Page = (Vec<Value>, Option<String>);

/// A source of resources.
pub trait ResourceProvider: Send + Sync + 'static {
    /// One page of `resources/list` entries from `cursor` (this provider's own), and the next.
    fn list<'a>(&'a self, cursor: Option<&'a str>) -> BoxFuture<'a, Result<Page, RpcError>>;
    /// `resourceTemplates` entries.
    fn templates(&self) -> Vec<Value> {
        Vec::new()
    }
    /// The `contents` of `uri`, or `None` if this provider does not know it.
    fn read<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<Option<Vec<Value>>, RpcError>>;
    /// [`Self::read`], noting for the audit log what was touched (a provider over the file
    /// system notes the sandbox path and any escape attempt).
    fn read_noted<'a>(
        &'a self,
        uri: &'a str,
        _note: &'a NoteCell,
    ) -> BoxFuture<'a, Result<Option<Vec<Value>>, RpcError>> {
        self.read(uri)
    }
    /// Completion values for `argument` of the template `template`.
    fn complete(&self, _template: &str, _argument: &str, _value: &str) -> Vec<String> {
        Vec::new()
    }
    /// [`Self::complete`], off the async workers where it touches the file system, noting what
    /// it touched.
    fn complete_noted<'a>(
        &'a self,
        template: &'a str,
        argument: &'a str,
        value: &'a str,
        _note: &'a NoteCell,
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move { self.complete(template, argument, value) })
    }
    /// Whether `resources/subscribe` (and `resourceSubscriptions`) make sense for this source.
    fn supports_subscribe(&self) -> bool {
        false
    }
}

/// All resource providers, in order.
#[derive(Default)]
pub struct Resources {
    providers: Vec<Box<dyn ResourceProvider>>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resources({} providers)", self.providers.len())
    }
}

fn encode_outer(provider: usize, inner: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{provider}:{inner}"))
}

fn decode_outer(cursor: &str) -> Option<(usize, String)> {
    if cursor.is_empty() {
        return Some((0, String::new()));
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (i, inner) = text.split_once(':')?;
    Some((i.parse().ok()?, inner.to_owned()))
}

impl Resources {
    pub fn add(&mut self, provider: impl ResourceProvider) -> &mut Self {
        self.providers.push(Box::new(provider));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    pub fn supports_subscribe(&self) -> bool {
        self.providers.iter().any(|p| p.supports_subscribe())
    }

    /// `resources/list`: the page at `cursor`.
    pub async fn list(&self, cursor: Option<&str>) -> Result<Value, RpcError> {
        let invalid = || RpcError::InvalidParams("invalid cursor".into());
        let (mut index, inner) = decode_outer(cursor.unwrap_or_default()).ok_or_else(invalid)?;
        if index >= self.providers.len() && !self.providers.is_empty() {
            return Err(invalid());
        }
        let mut inner = (!inner.is_empty()).then_some(inner);
        while let Some(provider) = self.providers.get(index) {
            let (page, next) = provider.list(inner.as_deref()).await?;
            let next = match next {
                Some(n) => Some(encode_outer(index, &n)),
                None if index + 1 < self.providers.len() => Some(encode_outer(index + 1, "")),
                None => None,
            };
            if page.is_empty() && next.is_some() {
                index += 1;
                inner = None;
                continue;
            }
            let mut result = json!({ "resources": page });
            if let Some(n) = next {
                result["nextCursor"] = json!(n);
            }
            return Ok(result);
        }
        Ok(json!({ "resources": [] }))
    }

    /// `resources/templates/list`.
    pub fn templates(&self) -> Value {
        let all: Vec<Value> = self.providers.iter().flat_map(|p| p.templates()).collect();
        json!({ "resourceTemplates": all })
    }

    /// `resources/read`.
    pub async fn read(&self, uri: &str, note: &NoteCell) -> Result<Value, RpcError> {
        for provider in &self.providers {
            if let Some(contents) = provider.read_noted(uri, note).await? {
                return Ok(json!({ "contents": contents }));
            }
        }
        Err(RpcError::ResourceNotFound {
            uri: uri.to_owned(),
        })
    }

    /// Completion values for a template argument.
    pub async fn complete(
        &self,
        template: &str,
        argument: &str,
        value: &str,
        note: &NoteCell,
    ) -> Vec<String> {
        let mut values = Vec::new();
        for provider in &self.providers {
            values.extend(
                provider
                    .complete_noted(template, argument, value, note)
                    .await,
            );
        }
        values.truncate(crate::mcp::prompts::MAX_COMPLETIONS);
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_opaque_and_checked() {
        assert_eq!(decode_cursor(&encode_cursor(300)), Some(300));
        assert_eq!(decode_cursor(""), Some(0));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("p:x")), None);
    }
}
