//! The file tools: read a file, list a directory, stat a path, search by name. All of them go
//! through [`Sandbox`], and all of them are read-only.
//!
//! Bounds, so that one call cannot tie the server up:
//! - `read_file` returns at most [`MAX_READ_BYTES`] per call (`offset`/`length` page through a
//!   larger file);
//! - `list_directory` returns at most [`MAX_LIST_ENTRIES`] entries;
//! - `search_files` looks at most [`MAX_SCANNED`] entries, [`MAX_DEPTH`](super::walk::MAX_DEPTH) levels deep, and
//!   returns at most `maxResults` (≤ [`MAX_SEARCH_RESULTS`]) matches.
//!
//! Every path is resolved by descriptor beneath its root and every later step (read, list,
//! stat, walk) goes through the open descriptor (see [`Sandbox`]), so a directory swapped for a
//! symlink mid-call cannot redirect it. Symlinks are listed as `symlink`, never followed or
//! entered, so walks cannot loop or leave the roots.
//! File system work runs on tokio's blocking pool, never on the request's worker thread.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::jobs::{Busy, FileJobs};
use super::sandbox::{Entry, Sandbox, SandboxError, Target};
use super::uri::file_uri;
use super::walk::{
    MAX_LIST_ENTRIES, MAX_READ_BYTES, MAX_SCANNED, MAX_SEARCH_RESULTS, base64_encode, read_chunk,
    walk,
};
use crate::tools::registry::{
    TaskSupport, Tool, ToolContext, ToolDefinition, ToolError, ToolFuture, ToolOutput, ToolRegistry,
};

const DEFAULT_SEARCH_RESULTS: u64 = 100;

/// A busy file-job queue, as the tool's failure (the client may retry).
impl From<Busy> for ToolError {
    fn from(_: Busy) -> Self {
        ToolError::Failed("the server is busy with other file operations; retry in a moment")
    }
}

/// A sandbox refusal, as the tool's failure: the refusal's own fixed text.
impl From<SandboxError> for ToolError {
    fn from(e: SandboxError) -> Self {
        ToolError::Failed(e.message())
    }
}

/// Registers the four file tools over `sandbox`.
pub fn register(registry: &mut ToolRegistry, sandbox: Arc<Sandbox>) {
    registry
        .register(ReadFile(sandbox.clone()))
        .register(ListDirectory(sandbox.clone()))
        .register(StatPath(sandbox.clone()))
        .register(SearchFiles(sandbox));
}

fn path_schema() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": super::sandbox::MAX_PATH_LEN,
        "description": "A path in the server's namespace: '<root>/<relative path>'. '/' lists the roots."
    })
}

/// Resolves a client path, noting for the audit log what was touched or attempted.
fn resolve(ctx: &ToolContext, sandbox: &Sandbox, path: &str) -> Result<Target, SandboxError> {
    let resolved = sandbox.resolve(path);
    match &resolved {
        Ok(Target::Entry(e)) => ctx.note_path(&e.virtual_path, false),
        Ok(Target::Roots) => ctx.note_path("/", false),
        Err(e) => ctx.note_path(path, e.is_escape_attempt()),
    }
    resolved
}

/// The input schema of a tool whose only argument is `path`.
fn path_only_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "path": path_schema() },
        "required": ["path"],
        "additionalProperties": false
    })
}

/// Runs blocking file work off the async workers, in one of the bounded file-job slots (busy:
/// a tool error); a panic there becomes a tool error.
fn blocking<F>(work: F) -> ToolFuture
where
    F: FnOnce() -> Result<ToolOutput, ToolError> + Send + 'static,
{
    Box::pin(async move {
        FileJobs::global()
            .run(work)
            .await?
            .unwrap_or(Err(ToolError::Failed("internal error")))
    })
}

fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> &'a str {
    args.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn u64_arg(args: &Map<String, Value>, key: &str) -> Option<u64> {
    args.get(key).and_then(Value::as_u64)
}

pub struct ReadFile(pub Arc<Sandbox>);

impl Tool for ReadFile {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "read_file",
            title: "Read file",
            description: "Reads a file inside the allowed directories. Returns UTF-8 text, or Base64 for \
                          binary data. At most 1 MiB per call; use offset and length to page.",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "path": path_schema(),
                    "offset": { "type": "integer", "minimum": 0, "description": "Byte offset to start at (default 0)." },
                    "length": { "type": "integer", "minimum": 1, "maximum": MAX_READ_BYTES, "description": "Bytes to read (default and maximum 1048576)." }
                },
                "required": ["path"],
                "additionalProperties": false
            }),
            read_only: true,
            requires_client: &[],
        }
    }

    fn call(&self, args: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        let sandbox = self.0.clone();
        blocking(move || {
            let entry = match resolve(&ctx, &sandbox, str_arg(&args, "path"))? {
                Target::Entry(e) => e,
                Target::Roots => return Err(SandboxError::NotAFile.into()),
            };
            let offset = u64_arg(&args, "offset").unwrap_or(0);
            let length = u64_arg(&args, "length")
                .unwrap_or(MAX_READ_BYTES)
                .min(MAX_READ_BYTES);
            let chunk = read_chunk(&sandbox, &entry, offset, length)?;
            let mut content = vec![match String::from_utf8(chunk.bytes) {
                Ok(text) => json!({ "type": "text", "text": text }),
                Err(e) => {
                    let blob = base64_encode(e.as_bytes());
                    json!({ "type": "resource", "resource": {
                        "uri": file_uri(&entry.virtual_path),
                        "mimeType": "application/octet-stream",
                        "blob": blob,
                    }})
                }
            }];
            if chunk.end < chunk.size {
                content.push(json!({ "type": "text", "text": format!(
                    "[{} of {} bytes shown; continue with offset {}]",
                    chunk.end - offset, chunk.size, chunk.end
                )}));
            }
            Ok(ToolOutput::content(content))
        })
    }
}

pub struct ListDirectory(pub Arc<Sandbox>);

impl Tool for ListDirectory {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "list_directory",
            title: "List directory",
            description: "Lists a directory inside the allowed directories ('/' lists the roots). \
                          Entries are sorted by name; at most 1000 are returned.",
            input_schema: path_only_schema(),
            read_only: true,
            requires_client: &[],
        }
    }

    fn call(&self, args: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        let sandbox = self.0.clone();
        blocking(move || {
            let (path, entries, truncated) = match resolve(&ctx, &sandbox, str_arg(&args, "path"))?
            {
                Target::Roots => {
                    let roots: Vec<Value> = sandbox
                        .root_names()
                        .map(|name| json!({ "name": name, "type": "directory" }))
                        .collect();
                    ("/".to_owned(), roots, false)
                }
                Target::Entry(entry) if entry.is_dir => {
                    let (entries, truncated) = list(&sandbox, &entry)?;
                    (entry.virtual_path, entries, truncated)
                }
                Target::Entry(_) => return Err(SandboxError::NotADirectory.into()),
            };
            Ok(ToolOutput::structured(
                json!({ "path": path, "entries": entries, "truncated": truncated }),
            ))
        })
    }
}

/// The entries of a directory, sorted by name: at most [`MAX_LIST_ENTRIES`] of the first
/// [`MAX_SCANNED`] the directory yields.
fn list(sandbox: &Sandbox, dir: &Entry) -> Result<(Vec<Value>, bool), ToolError> {
    let mut items = sandbox.list(dir, MAX_SCANNED)?;
    items.sort_by(|a, b| a.name.cmp(&b.name));
    let truncated = items.len() > MAX_LIST_ENTRIES;
    let entries = items
        .into_iter()
        .take(MAX_LIST_ENTRIES)
        .map(|item| {
            let mut v = json!({ "name": item.name, "type": item.kind });
            if let Some(size) = item.size {
                v["size"] = json!(size);
            }
            v
        })
        .collect();
    Ok((entries, truncated))
}

pub struct StatPath(pub Arc<Sandbox>);

impl Tool for StatPath {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "stat_path",
            title: "Stat path",
            description: "Reports the type, size, modification time (Unix seconds) and read-only flag of \
                          a file or directory inside the allowed directories.",
            input_schema: path_only_schema(),
            read_only: true,
            requires_client: &[],
        }
    }

    fn call(&self, args: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        let sandbox = self.0.clone();
        blocking(move || {
            let entry = match resolve(&ctx, &sandbox, str_arg(&args, "path"))? {
                Target::Roots => {
                    return Ok(ToolOutput::structured(
                        json!({ "path": "/", "type": "directory" }),
                    ));
                }
                Target::Entry(entry) => entry,
            };
            let meta = sandbox.metadata(&entry)?;
            Ok(ToolOutput::structured(json!({
                "path": entry.virtual_path,
                "type": if entry.is_dir { "directory" } else { "file" },
                "size": meta.size,
                "modified": meta.modified,
                "readOnly": meta.read_only,
            })))
        })
    }
}

pub struct SearchFiles(pub Arc<Sandbox>);

impl Tool for SearchFiles {
    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: "search_files",
            title: "Search files",
            description: "Finds files and directories whose name matches a glob pattern ('*', '?', \
                          '[abc]'), below a directory inside the allowed directories ('/' searches all \
                          roots). Symlinks are not followed.",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "path": path_schema(),
                    "pattern": { "type": "string", "minLength": 1, "maxLength": 256 },
                    "maxResults": { "type": "integer", "minimum": 1, "maximum": MAX_SEARCH_RESULTS }
                },
                "required": ["path", "pattern"],
                "additionalProperties": false
            }),
            read_only: true,
            requires_client: &[],
        }
    }

    /// A search of a large tree may take long: a 2026-07-28 client that offers tasks gets one
    /// when the walk outlasts the grace period; cancelling it stops the walk.
    fn task_support(&self) -> TaskSupport {
        TaskSupport::Optional
    }

    fn call(&self, args: Map<String, Value>, ctx: ToolContext) -> ToolFuture {
        let sandbox = self.0.clone();
        blocking(move || {
            let pattern = glob::Pattern::new(str_arg(&args, "pattern"))
                .map_err(|_| ToolError::InvalidArguments("pattern is not a valid glob".into()))?;
            let max = u64_arg(&args, "maxResults").unwrap_or(DEFAULT_SEARCH_RESULTS) as usize;
            let starts: Vec<Entry> = match resolve(&ctx, &sandbox, str_arg(&args, "path"))? {
                Target::Roots => sandbox.root_entries().collect(),
                Target::Entry(e) if e.is_dir => vec![e],
                Target::Entry(_) => return Err(SandboxError::NotADirectory.into()),
            };
            let mut matches = Vec::new();
            let walk = walk(&sandbox, &starts, |item| {
                if pattern.matches(&item.name) {
                    matches.push(json!({ "path": item.virtual_path, "type": item.kind }));
                }
                matches.len() < max && !ctx.is_cancelled()
            });
            Ok(ToolOutput::structured(json!({
                "matches": matches,
                "truncated": walk.stopped_early,
            })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_queue_fails_a_tool_with_the_queue_s_own_words() {
        assert_eq!(ToolError::from(Busy).to_string(), Busy.to_string());
    }

    #[tokio::test]
    async fn a_cancelled_search_stops_walking() {
        use crate::mcp::version::Era;
        use crate::security::principal::KeyId;
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..50 {
            std::fs::write(dir.path().join(format!("f{i}.txt")), "x").expect("write");
        }
        let sandbox = Arc::new(Sandbox::new(&[dir.path().to_path_buf()]).expect("sandbox"));
        let root = sandbox.root_entries().next().expect("root").virtual_path;
        let args: Map<String, Value> =
            serde_json::from_value(json!({ "path": root, "pattern": "*.txt" })).expect("args");
        let ctx = ToolContext::detached(Era::Modern, KeyId::new("k"));
        let found = SearchFiles(sandbox.clone())
            .call(args.clone(), ctx.clone())
            .await;
        let found = found.expect("search");
        assert_eq!(
            found.structured.expect("matches")["matches"]
                .as_array()
                .map(Vec::len),
            Some(50)
        );
        let token = tokio_util::sync::CancellationToken::new();
        token.cancel();
        let cancelled = SearchFiles(sandbox)
            .call(args, ctx.with_cancellation(token))
            .await
            .expect("search")
            .structured
            .expect("matches");
        assert!(
            cancelled["matches"]
                .as_array()
                .is_some_and(|m| m.len() <= 1),
            "the walk stops at the first entry once cancelled: {cancelled}"
        );
        assert_eq!(cancelled["truncated"], true);
    }
}
