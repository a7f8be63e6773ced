//! `Sandbox`: the only way a tool or resource reaches the file system.
//!
//! Threat: a client (or a model steered by a prompt injection) asking for files outside the
//! directories the operator allowed, by `..`, absolute paths, symlinks, or special files that
//! block or leak (FIFOs, devices, sockets); and anyone who can write inside an allowed directory
//! racing the server, swapping a directory for a symlink to the outside between the check of a
//! path and its use.
//!
//! The namespace is virtual. Each allowed directory is mounted under a name, the last component
//! of its path (`/srv/docs` → `docs`; a repeated name gets `-2`, `-3`, …), and clients name files
//! as `docs/guide/intro.md` (a leading `/` is optional; `/` alone is the list of roots). The
//! absolute location of a root never reaches a client, in results or in errors, and a host path
//! such as `/etc/passwd` simply names a root that does not exist.
//!
//! How a path is resolved, in order:
//! 1. it must be at most 4096 bytes and contain no NUL byte;
//! 2. it must have no `..` component (refused outright rather than normalised, so intent shows
//!    in the audit log);
//! 3. its first component must name a root;
//! 4. the rest is opened **by descriptor, beneath the root's descriptor** (held open from
//!    start), never again by name: `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where
//!    the kernel has it (Linux 5.6+), otherwise component by component with `openat` and
//!    `O_NOFOLLOW | O_DIRECTORY`. **No symlink is followed**, inside the root or out: a path
//!    through one is refused (a link that points inside is refused too, because whether it
//!    points inside can change between a check and a use);
//! 5. the last component is looked at without following it (`fstatat`), must be a regular file
//!    or a directory, and is opened with `O_NOFOLLOW | O_NONBLOCK` (a FIFO swapped in cannot
//!    block); the open descriptor is checked again (`fstat`: same inode, same kind).
//!
//! What a tool does next (read, list, stat, walk) it does through that descriptor (`fstat`,
//! `fdopendir`, `fstatat`, `openat` of a single name with `O_NOFOLLOW`), so a rename or a
//! symlink swapped in after resolution cannot redirect it. A walk re-resolves each directory
//! beneath its start rather than holding descriptors, so it holds at most two at a time.
//!
//! Error messages are fixed strings that name no path.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// The longest path a client may send.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a path was refused. The messages are what the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("path must not contain NUL bytes")]
    NulByte,
    #[error("path is too long")]
    TooLong,
    #[error("path must not contain '..'")]
    ParentReference,
    #[error("path is outside the allowed directories")]
    OutsideRoots,
    #[error("path goes through a symbolic link, which is not followed")]
    Symlink,
    #[error("no such file or directory")]
    NotFound,
    #[error("not a regular file or directory")]
    SpecialFile,
    #[error("not a file")]
    NotAFile,
    #[error("not a directory")]
    NotADirectory,
    #[error("permission denied")]
    PermissionDenied,
    #[error("the file could not be read")]
    Io,
}

impl SandboxError {
    /// The refusal's fixed text (what `Display` writes), for a tool's failure.
    pub fn message(self) -> &'static str {
        match self {
            Self::NulByte => "path must not contain NUL bytes",
            Self::TooLong => "path is too long",
            Self::ParentReference => "path must not contain '..'",
            Self::OutsideRoots => "path is outside the allowed directories",
            Self::Symlink => "path goes through a symbolic link, which is not followed",
            Self::NotFound => "no such file or directory",
            Self::SpecialFile => "not a regular file or directory",
            Self::NotAFile => "not a file",
            Self::NotADirectory => "not a directory",
            Self::PermissionDenied => "permission denied",
            Self::Io => "the file could not be read",
        }
    }

    /// Whether this refusal means someone tried to leave the sandbox (a security event). A
    /// symlink counts: it is how a file system race or a planted link reaches the outside.
    pub fn is_escape_attempt(self) -> bool {
        matches!(
            self,
            Self::NulByte
                | Self::ParentReference
                | Self::OutsideRoots
                | Self::Symlink
                | Self::SpecialFile
        )
    }

    fn from_errno(e: Errno) -> Self {
        match e {
            Errno::NOENT | Errno::NOTDIR => Self::NotFound,
            Errno::ACCESS | Errno::PERM => Self::PermissionDenied,
            Errno::LOOP => Self::Symlink,
            Errno::XDEV => Self::OutsideRoots,
            _ => Self::Io,
        }
    }
}

/// A configured root: its public name and its descriptor (opened at start, `O_PATH`).
#[derive(Debug)]
struct Root {
    name: String,
    fd: OwnedFd,
}

/// What a path resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/`: the list of roots.
    Roots,
    Entry(Entry),
}

/// A file or directory inside the sandbox, held open.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The open file or directory (read-only; a directory can be listed through it).
    fd: Arc<OwnedFd>,
    /// Which root it lies under, and its components below that root.
    root: usize,
    relative: Vec<String>,
    /// The client-facing path, `root/relative`.
    pub virtual_path: String,
    pub is_dir: bool,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.virtual_path == other.virtual_path && self.is_dir == other.is_dir
    }
}

impl Eq for Entry {}

/// What `stat_path` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub modified: Option<u64>,
    /// No write permission bit is set.
    pub read_only: bool,
}

/// One entry of a directory listing (not followed if a symlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirItem {
    pub name: String,
    /// `file`, `directory`, `symlink` or `other`.
    pub kind: &'static str,
    /// The size of a regular file.
    pub size: Option<u64>,
}

/// Set once the kernel has said it has no `openat2` (or a filter forbids it).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn kind_of(mode: u32) -> &'static str {
    match FileType::from_raw_mode(mode) {
        FileType::Symlink => "symlink",
        FileType::Directory => "directory",
        FileType::RegularFile => "file",
        _ => "other",
    }
}

/// Opens the directory `components` name beneath `base` (`O_PATH`), following no symlink.
fn open_dir_beneath(base: BorrowedFd<'_>, components: &[&str]) -> Result<OwnedFd, SandboxError> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if components.is_empty() {
        return rustix::fs::openat(base, ".", flags, Mode::empty())
            .map_err(SandboxError::from_errno);
    }
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let path = components.join("/");
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(base, path.as_str(), flags, Mode::empty(), resolve) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOSYS | Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
            Err(Errno::NOTDIR) => return Err(classify_walk(base, components)),
            Err(e) => return Err(SandboxError::from_errno(e)),
        }
    }
    open_dir_by_components(base, components)
}

/// The fallback: one component at a time, each opened `O_NOFOLLOW | O_DIRECTORY` beneath the
/// last (a component is a single name: no `/`, no `..`).
fn open_dir_by_components(
    base: BorrowedFd<'_>,
    components: &[&str],
) -> Result<OwnedFd, SandboxError> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut current =
        rustix::fs::openat(base, ".", flags, Mode::empty()).map_err(SandboxError::from_errno)?;
    for part in components {
        current = match rustix::fs::openat(&current, *part, flags, Mode::empty()) {
            Ok(fd) => fd,
            // `O_PATH | O_NOFOLLOW` opens a symlink itself; `O_DIRECTORY` then refuses it.
            Err(Errno::NOTDIR | Errno::LOOP) => return Err(not_a_dir(current.as_fd(), part)),
            Err(e) => return Err(SandboxError::from_errno(e)),
        };
    }
    Ok(current)
}

/// Why `name` in `dir` could not be entered as a directory.
fn not_a_dir(dir: BorrowedFd<'_>, name: &str) -> SandboxError {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => SandboxError::Symlink,
        Ok(_) => SandboxError::NotFound,
        Err(e) => SandboxError::from_errno(e),
    }
}

/// `openat2` said "not a directory" somewhere along `components`: a symlink or a file.
fn classify_walk(base: BorrowedFd<'_>, components: &[&str]) -> SandboxError {
    match open_dir_by_components(base, components) {
        Err(e) => e,
        Ok(_) => SandboxError::NotFound,
    }
}

/// Opens the last of `components` beneath `base`: a regular file or a directory, read-only,
/// without following it, checked again on the open descriptor.
fn open_beneath(
    base: BorrowedFd<'_>,
    components: &[&str],
) -> Result<(OwnedFd, Stat), SandboxError> {
    let Some((last, parents)) = components.split_last() else {
        let fd = rustix::fs::openat(
            base,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(SandboxError::from_errno)?;
        let st = rustix::fs::fstat(&fd).map_err(SandboxError::from_errno)?;
        return Ok((fd, st));
    };
    let parent = open_dir_beneath(base, parents)?;
    let seen = rustix::fs::statat(&parent, *last, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(SandboxError::from_errno)?;
    let kind = FileType::from_raw_mode(seen.st_mode);
    let mut flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    match kind {
        FileType::Symlink => return Err(SandboxError::Symlink),
        FileType::Directory => flags |= OFlags::DIRECTORY,
        FileType::RegularFile => {}
        _ => return Err(SandboxError::SpecialFile),
    }
    let fd = rustix::fs::openat(&parent, *last, flags, Mode::empty()).map_err(|e| match e {
        Errno::NOTDIR => SandboxError::NotFound,
        other => SandboxError::from_errno(other),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(SandboxError::from_errno)?;
    // Swapped between the look and the open: refuse rather than guess.
    if FileType::from_raw_mode(st.st_mode) != kind
        || st.st_ino != seen.st_ino
        || st.st_dev != seen.st_dev
    {
        return Err(SandboxError::SpecialFile);
    }
    Ok((fd, st))
}

/// The allowed directories.
#[derive(Debug, Clone)]
pub struct Sandbox {
    roots: Arc<Vec<Root>>,
}

impl Sandbox {
    /// Mounts the given directories; each must exist and be a directory. Each is opened now and
    /// its descriptor kept: what a root is cannot change while the server runs.
    pub fn new(dirs: &[PathBuf]) -> io::Result<Self> {
        let mut roots: Vec<Root> = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let path = dir.canonicalize()?;
            let fd = rustix::fs::open(
                &path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io::Error::from)?;
            let base = path
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| !n.is_empty())
                .unwrap_or("root")
                .to_owned();
            let mut name = base.clone();
            let mut n = 2;
            while roots.iter().any(|r| r.name == name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            roots.push(Root { name, fd });
        }
        Ok(Self {
            roots: Arc::new(roots),
        })
    }

    /// The public names of the roots, in configuration order.
    pub fn root_names(&self) -> impl Iterator<Item = &str> {
        self.roots.iter().map(|r| r.name.as_str())
    }

    /// The root entries themselves (a root that can no longer be opened is left out).
    pub fn root_entries(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.roots.len()).filter_map(|i| self.open_entry(i, Vec::new()).ok())
    }

    fn open_entry(&self, root: usize, relative: Vec<String>) -> Result<Entry, SandboxError> {
        let r = self.roots.get(root).ok_or(SandboxError::OutsideRoots)?;
        let parts: Vec<&str> = relative.iter().map(String::as_str).collect();
        let (fd, st) = open_beneath(r.fd.as_fd(), &parts)?;
        let virtual_path = if relative.is_empty() {
            r.name.clone()
        } else {
            format!("{}/{}", r.name, relative.join("/"))
        };
        Ok(Entry {
            fd: Arc::new(fd),
            root,
            relative,
            virtual_path,
            is_dir: FileType::from_raw_mode(st.st_mode) == FileType::Directory,
        })
    }

    /// Resolves a client path to an open, checked target (the steps of the module doc).
    pub fn resolve(&self, requested: &str) -> Result<Target, SandboxError> {
        if requested.len() > MAX_PATH_LEN {
            return Err(SandboxError::TooLong);
        }
        if requested.contains('\0') {
            return Err(SandboxError::NulByte);
        }
        let mut parts = Vec::new();
        for part in requested.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(SandboxError::ParentReference),
                other => parts.push(other),
            }
        }
        let Some((first, rest)) = parts.split_first() else {
            return Ok(Target::Roots);
        };
        let root = self
            .roots
            .iter()
            .position(|r| r.name == *first)
            .ok_or(SandboxError::OutsideRoots)?;
        let relative = rest.iter().map(|p| (*p).to_owned()).collect();
        self.open_entry(root, relative).map(Target::Entry)
    }

    /// Resolves a path that must be an entry (not `/`).
    pub fn resolve_entry(&self, requested: &str) -> Result<Entry, SandboxError> {
        match self.resolve(requested)? {
            Target::Entry(e) => Ok(e),
            Target::Roots => Err(SandboxError::NotAFile),
        }
    }

    /// The resolved file, for reading (its own descriptor, sharing nothing with the entry's).
    pub fn open_file(&self, entry: &Entry) -> Result<File, SandboxError> {
        if entry.is_dir {
            return Err(SandboxError::NotAFile);
        }
        let fd = entry.fd.try_clone().map_err(|_| SandboxError::Io)?;
        Ok(File::from(fd))
    }

    /// Size, modification time and read-only flag, from the open descriptor.
    pub fn metadata(&self, entry: &Entry) -> Result<Metadata, SandboxError> {
        let st = rustix::fs::fstat(entry.fd.as_fd()).map_err(SandboxError::from_errno)?;
        Ok(Metadata {
            size: u64::try_from(st.st_size).unwrap_or(0),
            modified: u64::try_from(st.st_mtime).ok(),
            read_only: st.st_mode & 0o222 == 0,
        })
    }

    /// The entries of a resolved directory, read through its descriptor, at most `limit` of
    /// them (names that are not UTF-8 are skipped), in directory order.
    pub fn list(&self, entry: &Entry, limit: usize) -> Result<Vec<DirItem>, SandboxError> {
        if !entry.is_dir {
            return Err(SandboxError::NotADirectory);
        }
        let dir = rustix::fs::Dir::read_from(entry.fd.as_fd()).map_err(SandboxError::from_errno)?;
        let mut items = Vec::new();
        for item in dir {
            let Ok(item) = item else { break };
            let Ok(name) = item.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            if items.len() == limit {
                break;
            }
            let st = rustix::fs::statat(entry.fd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW).ok();
            let kind = st.as_ref().map_or("other", |s| kind_of(s.st_mode));
            let size = st
                .filter(|_| kind == "file")
                .and_then(|s| u64::try_from(s.st_size).ok());
            items.push(DirItem {
                name: name.to_owned(),
                kind,
                size,
            });
        }
        Ok(items)
    }

    /// Opens what `location` names, resolving it beneath its root again.
    pub fn open_location(&self, location: &Location) -> Result<Entry, SandboxError> {
        self.open_entry(location.root, location.relative.clone())
    }
}

/// Where an entry lies (its root and the names below it), without holding it open: what a
/// walk queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    root: usize,
    relative: Vec<String>,
}

impl Location {
    /// The location of `name` below this one; `None` for anything but a single plain name.
    pub fn child(&self, name: &str) -> Option<Location> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        let mut relative = self.relative.clone();
        relative.push(name.to_owned());
        Some(Location {
            root: self.root,
            relative,
        })
    }
}

impl Entry {
    /// The open descriptor (what every later step goes through).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Where this entry lies.
    pub fn location(&self) -> Location {
        Location {
            root: self.root,
            relative: self.relative.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
