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
//!
//! Other resources (the conformance fixtures, an embedding program's own) plug in through
//! [`ResourceProvider`]; [`Resources`] puts the providers together: `resources/list` pages
//! through them in order, `resources/read` asks each in order until one knows the URI.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::error::RpcError;
use crate::observability::audit::{NoteCell, note_path};
use crate::tools::fs::{self, MAX_READ_BYTES};
use crate::tools::jobs::FileJobs;
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

/// The file resources of a sandbox.
#[derive(Debug, Clone)]
pub struct FileResources {
    sandbox: Arc<Sandbox>,
}

impl FileResources {
    pub fn new(sandbox: Arc<Sandbox>) -> Self {
        Self { sandbox }
    }

    /// One page of files from `cursor`, and the cursor of the next.
    pub async fn list_files(&self, cursor: Option<&str>) -> Result<Page, RpcError> {
        let start = decode_cursor(cursor.unwrap_or_default())
            .ok_or(RpcError::InvalidParams("invalid cursor".into()))?;
        let sandbox = self.sandbox.clone();
        FileJobs::global()
            .run(move || {
                let starts: Vec<_> = sandbox.root_entries().collect();
                let mut page = Vec::with_capacity(PAGE_SIZE);
                let mut seen = 0usize;
                let mut more = false;
                fs::walk(&sandbox, &starts, |item| {
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
                (page, more.then(|| encode_cursor(start + PAGE_SIZE)))
            })
            .await
            .map_err(|_| RpcError::Busy)?
            .ok_or(RpcError::Internal)
    }

    /// The `contents` of a file URI; the sandbox path (or the attempt) is noted for the audit.
    pub async fn read_file(&self, uri: &str, note: &NoteCell) -> Result<Vec<Value>, RpcError> {
        let not_found = || RpcError::ResourceNotFound {
            uri: uri.to_owned(),
        };
        let path = virtual_path_of(uri).ok_or_else(not_found)?;
        let sandbox = self.sandbox.clone();
        let uri_owned = uri.to_owned();
        let note = note.clone();
        let outcome = FileJobs::global().run(move || {
            let resolved = sandbox.resolve_entry(&path);
            match &resolved {
                Ok(entry) => note_path(&note, &entry.virtual_path, false),
                Err(e) => note_path(&note, &path, e.is_escape_attempt()),
            }
            let entry = resolved.map_err(ReadFailure::Sandbox)?;
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
        .map_err(|_| RpcError::Busy)?
        .ok_or(RpcError::Internal)?;
        match outcome {
            Ok(content) => Ok(vec![content]),
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

impl ResourceProvider for FileResources {
    fn list<'a>(&'a self, cursor: Option<&'a str>) -> BoxFuture<'a, Result<Page, RpcError>> {
        Box::pin(self.list_files(cursor))
    }

    fn templates(&self) -> Vec<Value> {
        vec![json!({
            "uriTemplate": "file:///{+path}",
            "name": "file",
            "title": "Files in the allowed directories",
            "description": "A file named by its path in the server's namespace: '<root>/<relative path>'.",
        })]
    }

    fn read<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, Result<Option<Vec<Value>>, RpcError>> {
        Box::pin(async move {
            if !uri.starts_with(SCHEME) {
                return Ok(None);
            }
            self.read_file(uri, &NoteCell::default()).await.map(Some)
        })
    }

    fn read_noted<'a>(
        &'a self,
        uri: &'a str,
        note: &'a NoteCell,
    ) -> BoxFuture<'a, Result<Option<Vec<Value>>, RpcError>> {
        Box::pin(async move {
            if !uri.starts_with(SCHEME) {
                return Ok(None);
            }
            self.read_file(uri, note).await.map(Some)
        })
    }

    fn complete(&self, template: &str, argument: &str, value: &str) -> Vec<String> {
        complete_path(
            &self.sandbox,
            template,
            argument,
            value,
            &NoteCell::default(),
        )
    }

    fn complete_noted<'a>(
        &'a self,
        template: &'a str,
        argument: &'a str,
        value: &'a str,
        note: &'a NoteCell,
    ) -> BoxFuture<'a, Vec<String>> {
        let (sandbox, note) = (self.sandbox.clone(), note.clone());
        let (template, argument, value) =
            (template.to_owned(), argument.to_owned(), value.to_owned());
        Box::pin(async move {
            FileJobs::global()
                .run(move || complete_path(&sandbox, &template, &argument, &value, &note))
                .await
                .ok()
                .flatten()
                .unwrap_or_default()
        })
    }
}

/// Completes `path` of `file:///{+path}` with the entries of the directory it names, noting
/// the directory (or the attempt) for the audit log.
fn complete_path(
    sandbox: &Sandbox,
    template: &str,
    argument: &str,
    value: &str,
    note: &NoteCell,
) -> Vec<String> {
    if template != "file:///{+path}" || argument != "path" {
        return Vec::new();
    }
    let (dir, prefix) = value.rsplit_once('/').unwrap_or(("", value));
    let target = match sandbox.resolve(dir) {
        Ok(target) => target,
        Err(e) => {
            note_path(note, dir, e.is_escape_attempt());
            return Vec::new();
        }
    };
    let names: Vec<(String, bool)> = match target {
        crate::tools::sandbox::Target::Roots => {
            note_path(note, "/", false);
            sandbox.root_names().map(|n| (n.to_owned(), true)).collect()
        }
        crate::tools::sandbox::Target::Entry(e) if e.is_dir => {
            note_path(note, &e.virtual_path, false);
            sandbox
                .list(&e, crate::tools::fs::MAX_LIST_ENTRIES)
                .unwrap_or_default()
                .into_iter()
                .map(|item| (item.name, item.kind == "directory"))
                .collect()
        }
        crate::tools::sandbox::Target::Entry(e) => {
            note_path(note, &e.virtual_path, false);
            Vec::new()
        }
    };
    let mut out: Vec<String> = names
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, is_dir)| {
            let joined = if dir.is_empty() {
                n
            } else {
                format!("{dir}/{n}")
            };
            if is_dir { format!("{joined}/") } else { joined }
        })
        .collect();
    out.sort();
    out
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
