//! The two file operations the tools and the resources share: reading a chunk of a file and
//! walking the roots, both through descriptors the [`Sandbox`] opened, with the bounds that keep
//! one call from tying the server up.

use std::io::{Read, Seek, SeekFrom};

use super::sandbox::{Entry, Location, Sandbox, SandboxError};
use crate::tools::registry::ToolError;

pub const MAX_READ_BYTES: u64 = 1024 * 1024;
pub const MAX_LIST_ENTRIES: usize = 1000;
pub const MAX_SCANNED: usize = 20_000;
pub const MAX_DEPTH: usize = 16;
pub const MAX_SEARCH_RESULTS: u64 = 1000;

/// A piece of a file: its bytes, where it ended, and the file's size.
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub end: u64,
    pub size: u64,
}

/// Reads `length` bytes from `offset` of a sandboxed file. A UTF-8 sequence cut by the end of
/// the chunk is left for the next one, so paging through text never splits a character.
pub fn read_chunk(
    sandbox: &Sandbox,
    entry: &Entry,
    offset: u64,
    length: u64,
) -> Result<Chunk, ToolError> {
    let mut file = sandbox.open_file(entry)?;
    let size = file.metadata().map_err(|_| SandboxError::Io)?.len();
    file.seek(SeekFrom::Start(offset))
        .map_err(|_| SandboxError::Io)?;
    let mut bytes = Vec::new();
    file.take(length)
        .read_to_end(&mut bytes)
        .map_err(|_| SandboxError::Io)?;
    if let Err(e) = std::str::from_utf8(&bytes)
        && e.error_len().is_none()
    {
        bytes.truncate(e.valid_up_to());
    }
    let end = offset
        .saturating_add(bytes.len() as u64)
        .min(size.max(offset));
    Ok(Chunk { bytes, end, size })
}

pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One entry met by [`walk`].
pub struct WalkItem {
    pub name: String,
    pub virtual_path: String,
    pub kind: &'static str,
    pub size: Option<u64>,
}

/// How a walk ended.
pub struct WalkEnd {
    /// The visitor stopped it, or a bound was reached.
    pub stopped_early: bool,
}

/// Breadth-first walk below `starts`, in name order, not following symlinks, bounded by
/// [`MAX_SCANNED`] entries and [`MAX_DEPTH`] levels. `visit` returns `false` to stop. Each
/// directory is opened beneath its root when its turn comes (see [`Sandbox`]), so the queue
/// holds names, not descriptors.
pub fn walk(
    sandbox: &Sandbox,
    starts: &[Entry],
    mut visit: impl FnMut(&WalkItem) -> bool,
) -> WalkEnd {
    let mut queue: std::collections::VecDeque<(Location, String, usize)> = starts
        .iter()
        .map(|e| (e.location(), e.virtual_path.clone(), 0))
        .collect();
    let mut scanned = 0usize;
    while let Some((location, virtual_dir, depth)) = queue.pop_front() {
        let Ok(dir) = sandbox.open_location(&location) else {
            continue;
        };
        let Ok(mut items) = sandbox.list(&dir, MAX_SCANNED + 1 - scanned.min(MAX_SCANNED)) else {
            continue;
        };
        items.sort_by(|a, b| a.name.cmp(&b.name));
        for item in items {
            scanned += 1;
            if scanned > MAX_SCANNED {
                return WalkEnd {
                    stopped_early: true,
                };
            }
            let virtual_path = format!("{virtual_dir}/{}", item.name);
            if item.kind == "directory"
                && depth + 1 < MAX_DEPTH
                && let Some(child) = location.child(&item.name)
            {
                queue.push_back((child, virtual_path.clone(), depth + 1));
            }
            let item = WalkItem {
                name: item.name,
                virtual_path,
                kind: item.kind,
                size: item.size,
            };
            if !visit(&item) {
                return WalkEnd {
                    stopped_early: true,
                };
            }
        }
    }
    WalkEnd {
        stopped_early: false,
    }
}
