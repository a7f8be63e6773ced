//! Files under the allowed directories as MCP resources: `resources/list` (paginated),
//! `resources/templates/list` and `resources/read`, all through the same [`Sandbox`] checks as
//! the file tools.
//!
//! Decisions:
//! - URIs are `file:///<root>/<relative path>` in the sandbox's virtual namespace (see
//!   [`crate::tools::sandbox`]), percent-encoded per segment; they never reveal where a root lives
//!   on the host. The template is `file:///{+path}`.
//! - The listing walks the roots with the same bounds as `search_files`; a page holds
//!   [`PAGE_SIZE`] entries. The cursor is opaque to clients (Base64 of a position) and checked:
//!   a cursor that does not decode is `-32602`.
//! - A read is limited to [`crate::tools::fs::MAX_READ_BYTES`]; a larger file is refused with
//!   `-32602` (the `read_file` tool pages through it). Text is returned as `text`, anything that
//!   is not UTF-8 as a Base64 `blob`.
//! - Any refusal by the sandbox (missing, outside, special file) is "resource not found", with
//!   the code of the request's era; the precise reason goes to the log.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::tools::fs::{self, MAX_READ_BYTES};
use crate::tools::sandbox::Sandbox;

pub const PAGE_SIZE: usize = 100;
const SCHEME: &str = "file:///";

/// Characters escaped inside one path segment of a URI (RFC 3986 `pchar` minus a few).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'/');

/// The URI of a virtual path.
pub fn file_uri(virtual_path: &str) -> String {
    let mut uri = String::from(SCHEME);
    for (i, segment) in virtual_path.split('/').enumerate() {
        if i > 0 {
            uri.push('/');
        }
        uri.extend(utf8_percent_encode(segment, SEGMENT));
    }
    uri
}

/// The virtual path a URI names, if it is one of ours.
pub fn virtual_path_of(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix(SCHEME)?;
    if rest.contains(['?', '#']) {
        return None;
    }
    let decoded = percent_decode_str(rest).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

fn encode_cursor(position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("p:{position}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
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

/// The file resources of a sandbox.
#[derive(Debug, Clone)]
pub struct FileResources {
    sandbox: Arc<Sandbox>,
}

impl FileResources {
    pub fn new(sandbox: Arc<Sandbox>) -> Self {
        Self { sandbox }
    }

    /// `resources/list`: one page, and the cursor of the next.
    pub async fn list(&self, cursor: Option<&str>) -> Result<Value, RpcError> {
        let start = decode_cursor(cursor.unwrap_or_default())
            .ok_or(RpcError::InvalidParams("invalid cursor".into()))?;
        let sandbox = self.sandbox.clone();
        tokio::task::spawn_blocking(move || {
            let starts: Vec<_> = sandbox.root_entries().collect();
            let mut page = Vec::with_capacity(PAGE_SIZE);
            let mut seen = 0usize;
            let mut more = false;
            fs::walk(&starts, |item| {
                if item.kind != "file" {
                    return true;
                }
                if seen >= start {
                    if page.len() == PAGE_SIZE {
                        more = true;
                        return false;
                    }
                    let mut r = json!({
                        "uri": file_uri(&item.virtual_path),
                        "name": item.name,
                        "title": item.virtual_path,
                        "mimeType": mime_for(&item.name),
                    });
                    if let Some(size) = item.size {
                        r["size"] = json!(size);
                    }
                    page.push(r);
                }
                seen += 1;
                true
            });
            let mut result = json!({ "resources": page });
            if more {
                result["nextCursor"] = json!(encode_cursor(start + PAGE_SIZE));
            }
            result
        })
        .await
        .map_err(|_| RpcError::Internal)
    }

    /// `resources/templates/list`.
    pub fn templates(&self) -> Value {
        json!({ "resourceTemplates": [{
            "uriTemplate": "file:///{+path}",
            "name": "file",
            "title": "Files in the allowed directories",
            "description": "A file named by its path in the server's namespace: '<root>/<relative path>'.",
        }]})
    }

    /// `resources/read`.
    pub async fn read(&self, uri: &str) -> Result<Value, RpcError> {
        let not_found = || RpcError::ResourceNotFound {
            uri: uri.to_owned(),
        };
        let path = virtual_path_of(uri).ok_or_else(not_found)?;
        let sandbox = self.sandbox.clone();
        let uri_owned = uri.to_owned();
        let outcome = tokio::task::spawn_blocking(move || {
            let entry = sandbox.resolve_entry(&path).map_err(ReadFailure::Sandbox)?;
            if entry.is_dir {
                return Err(ReadFailure::Sandbox(crate::tools::sandbox::SandboxError::NotAFile));
            }
            let chunk = fs::read_chunk(&sandbox, &entry, 0, MAX_READ_BYTES + 1)
                .map_err(|_| ReadFailure::Unreadable)?;
            if chunk.size > MAX_READ_BYTES || chunk.bytes.len() as u64 > MAX_READ_BYTES {
                return Err(ReadFailure::TooLarge);
            }
            let mime = mime_for(&entry.virtual_path);
            Ok(match String::from_utf8(chunk.bytes) {
                Ok(text) => json!({ "uri": uri_owned, "mimeType": mime, "text": text }),
                Err(e) => json!({ "uri": uri_owned, "mimeType": mime, "blob": fs::base64_encode(e.as_bytes()) }),
            })
        })
        .await
        .map_err(|_| RpcError::Internal)?;
        match outcome {
            Ok(content) => Ok(json!({ "contents": [content] })),
            Err(ReadFailure::TooLarge) => Err(RpcError::InvalidParams(
                "resource is larger than 1 MiB; use the read_file tool with offset and length"
                    .into(),
            )),
            Err(ReadFailure::Sandbox(reason)) => {
                tracing::debug!(%reason, "resource refused");
                Err(not_found())
            }
            Err(ReadFailure::Unreadable) => Err(not_found()),
        }
    }
}

enum ReadFailure {
    Sandbox(crate::tools::sandbox::SandboxError),
    TooLarge,
    Unreadable,
}

fn mime_for(name: &str) -> String {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("text/plain")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_escape_segments() {
        let uri = file_uri("docs/a b/c#d.txt");
        assert_eq!(uri, "file:///docs/a%20b/c%23d.txt");
        assert_eq!(virtual_path_of(&uri).as_deref(), Some("docs/a b/c#d.txt"));
        assert_eq!(virtual_path_of("http://x/docs"), None);
        assert_eq!(virtual_path_of("file:///docs/a?x=1"), None);
        // an encoded slash or dot-dot decodes to something the sandbox refuses
        assert_eq!(
            virtual_path_of("file:///docs/%2E%2E/etc").as_deref(),
            Some("docs/../etc")
        );
    }

    #[test]
    fn cursors_are_opaque_and_checked() {
        assert_eq!(decode_cursor(&encode_cursor(300)), Some(300));
        assert_eq!(decode_cursor(""), Some(0));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("p:x")), None);
    }
}
