//! Files under the allowed directories as MCP resources (a [`ResourceProvider`]): `resources/list` (paginated),
//! `resources/templates/list` and `resources/read`, all through the same [`Sandbox`] checks as
//! the file tools.
//!
//! Decisions:
//! - URIs are `file:///<root>/<relative path>` in the sandbox's virtual namespace (see
//!   [`super::sandbox`]), percent-encoded per segment; they never reveal where a root lives
//!   on the host. The template is `file:///{+path}`.
//! - The listing walks the roots with the same bounds as `search_files`; a page holds
//!   [`PAGE_SIZE`] entries. The cursor is opaque to clients (Base64 of a position) and checked:
//!   a cursor that does not decode is `-32602`.
//! - A read is limited to [`MAX_READ_BYTES`]; a larger file is refused with
//!   `-32602` (the `read_file` tool pages through it). Text is returned as `text`, anything that
//!   is not UTF-8 as a Base64 `blob`.
//! - Any refusal by the sandbox (missing, outside, special file) is "resource not found", with
//!   the code of the request's era; the precise reason goes to the log.
//!

use std::sync::Arc;

use serde_json::{Value, json};

use super::jobs::FileJobs;
use super::sandbox::Sandbox;
use super::uri::{SCHEME, file_uri, virtual_path_of};
use super::walk::{self, MAX_READ_BYTES};
use crate::error::RpcError;
use crate::mcp::context::{NoteCell, note_path};
use crate::mcp::resources::{
    BoxFuture, PAGE_SIZE, Page, ResourceProvider, decode_cursor, encode_cursor,
};

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
                walk::walk(&sandbox, &starts, |item| {
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
                return Err(ReadFailure::Sandbox(crate::files::sandbox::SandboxError::NotAFile));
            }
            let chunk = walk::read_chunk(&sandbox, &entry, 0, MAX_READ_BYTES + 1)
                .map_err(|_| ReadFailure::Unreadable)?;
            if chunk.size > MAX_READ_BYTES || chunk.bytes.len() as u64 > MAX_READ_BYTES {
                return Err(ReadFailure::TooLarge);
            }
            let mime = mime_for(&entry.virtual_path);
            Ok(match String::from_utf8(chunk.bytes) {
                Ok(text) => json!({ "uri": uri_owned, "mimeType": mime, "text": text }),
                Err(e) => json!({ "uri": uri_owned, "mimeType": mime, "blob": walk::base64_encode(e.as_bytes()) }),
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
        crate::files::sandbox::Target::Roots => {
            note_path(note, "/", false);
            sandbox.root_names().map(|n| (n.to_owned(), true)).collect()
        }
        crate::files::sandbox::Target::Entry(e) if e.is_dir => {
            note_path(note, &e.virtual_path, false);
            sandbox
                .list(&e, super::walk::MAX_LIST_ENTRIES)
                .unwrap_or_default()
                .into_iter()
                .map(|item| (item.name, item.kind == "directory"))
                .collect()
        }
        crate::files::sandbox::Target::Entry(e) => {
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
    Sandbox(crate::files::sandbox::SandboxError),
    TooLarge,
    Unreadable,
}

fn mime_for(name: &str) -> String {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("text/plain")
        .to_owned()
}
