//! `Sandbox`: the only way a tool or resource reaches the file system.
//!
//! Threat: a client (or a model steered by a prompt injection) asking for files outside the
//! directories the operator allowed, by `..`, absolute paths, symlinks, or special files that
//! block or leak (FIFOs, devices, sockets).
//!
//! The namespace is virtual. Each allowed directory is mounted under a name, the last component
//! of its path (`/srv/docs` → `docs`; a repeated name gets `-2`, `-3`, …), and clients name files
//! as `docs/guide/intro.md` (a leading `/` is optional; `/` alone is the list of roots). The
//! absolute location of a root never reaches a client, in results or in errors, and a host path
//! such as `/etc/passwd` simply names a root that does not exist.
//!
//! How a path is checked, in order:
//! 1. it must be at most 4096 bytes and contain no NUL byte;
//! 2. it must have no `..` component (refused outright rather than normalised, so intent shows
//!    in the audit log);
//! 3. its first component must name a root;
//! 4. the rest is joined to the root and canonicalised, which follows every symlink, and the
//!    result must still lie inside an allowed root;
//! 5. the target must be a regular file or a directory;
//! 6. a file is opened with `O_NOFOLLOW | O_NONBLOCK`, checked to be a regular file on the open
//!    descriptor (`fstat`), and the descriptor's real path (`/proc/self/fd`) is checked against
//!    the roots again, so a symlink swapped in between the check and the open cannot redirect
//!    the read, and a FIFO swapped in cannot block it.
//!
//! Error messages are fixed strings that name no path.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

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
    /// Whether this refusal means someone tried to leave the sandbox (a security event).
    pub fn is_escape_attempt(self) -> bool {
        matches!(
            self,
            Self::NulByte | Self::ParentReference | Self::OutsideRoots | Self::SpecialFile
        )
    }

    fn from_io(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => Self::NotFound,
            io::ErrorKind::PermissionDenied => Self::PermissionDenied,
            io::ErrorKind::NotADirectory => Self::NotFound,
            _ => Self::Io,
        }
    }
}

/// A configured root: its public name and its canonical location.
#[derive(Debug, Clone)]
struct Root {
    name: String,
    path: PathBuf,
}

/// What a path resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/`: the list of roots.
    Roots,
    Entry(Entry),
}

/// A file or directory inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The canonical host path (never shown to clients).
    pub path: PathBuf,
    /// The client-facing path, `root/relative`.
    pub virtual_path: String,
    pub is_dir: bool,
}

/// The allowed directories.
#[derive(Debug, Clone)]
pub struct Sandbox {
    roots: Vec<Root>,
}

impl Sandbox {
    /// Mounts the given directories; each must exist and be a directory.
    pub fn new(dirs: &[PathBuf]) -> io::Result<Self> {
        let mut roots: Vec<Root> = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let path = dir.canonicalize()?;
            if !path.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "not a directory",
                ));
            }
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
            roots.push(Root { name, path });
        }
        Ok(Self { roots })
    }

    /// The public names of the roots, in configuration order.
    pub fn root_names(&self) -> impl Iterator<Item = &str> {
        self.roots.iter().map(|r| r.name.as_str())
    }

    /// The root entries themselves.
    pub fn root_entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.roots.iter().map(|r| Entry {
            path: r.path.clone(),
            virtual_path: r.name.clone(),
            is_dir: true,
        })
    }

    /// Resolves a client path to a checked target (steps 1 to 5 of the module doc).
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
            .find(|r| r.name == *first)
            .ok_or(SandboxError::OutsideRoots)?;
        let mut joined = root.path.clone();
        for part in rest {
            // A component such as "a\\b" is one file name on Unix; `Path::join` of a single
            // normal component cannot climb, but check the components to be sure.
            let p = Path::new(part);
            if p.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(SandboxError::OutsideRoots);
            }
            joined.push(p);
        }
        let canonical = joined
            .canonicalize()
            .map_err(|e| SandboxError::from_io(&e))?;
        let virtual_path = self
            .virtual_path(&canonical)
            .ok_or(SandboxError::OutsideRoots)?;
        let meta = std::fs::metadata(&canonical).map_err(|e| SandboxError::from_io(&e))?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(SandboxError::SpecialFile);
        }
        Ok(Target::Entry(Entry {
            path: canonical,
            virtual_path,
            is_dir: meta.is_dir(),
        }))
    }

    /// Resolves a path that must be an entry (not `/`).
    pub fn resolve_entry(&self, requested: &str) -> Result<Entry, SandboxError> {
        match self.resolve(requested)? {
            Target::Entry(e) => Ok(e),
            Target::Roots => Err(SandboxError::NotAFile),
        }
    }

    /// The client-facing path of a canonical host path, if it lies inside a root.
    pub fn virtual_path(&self, canonical: &Path) -> Option<String> {
        self.roots.iter().find_map(|root| {
            let rel = canonical.strip_prefix(&root.path).ok()?;
            let rel = rel.to_str()?;
            Some(if rel.is_empty() {
                root.name.clone()
            } else {
                format!("{}/{}", root.name, rel)
            })
        })
    }

    /// Opens a resolved file for reading (step 6 of the module doc).
    pub fn open_file(&self, entry: &Entry) -> Result<File, SandboxError> {
        if entry.is_dir {
            return Err(SandboxError::NotAFile);
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&entry.path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => SandboxError::OutsideRoots,
                _ => SandboxError::from_io(&e),
            })?;
        let meta = file.metadata().map_err(|e| SandboxError::from_io(&e))?;
        if !meta.is_file() {
            return Err(SandboxError::SpecialFile);
        }
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|_| SandboxError::Io)?;
        if self.virtual_path(&real).is_none() {
            return Err(SandboxError::OutsideRoots);
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _outside: tempfile::TempDir,
        _root: tempfile::TempDir,
        sandbox: Sandbox,
        name: String,
    }

    fn fixture() -> Fixture {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.txt"), "secret").expect("write");
        std::fs::create_dir(root.path().join("sub")).expect("mkdir");
        std::fs::write(root.path().join("sub/a.txt"), "hello").expect("write");
        symlink(
            outside.path().join("secret.txt"),
            root.path().join("escape-file"),
        )
        .expect("ln");
        symlink(outside.path(), root.path().join("escape-dir")).expect("ln");
        symlink(
            root.path().join("sub/a.txt"),
            root.path().join("inside-link"),
        )
        .expect("ln");
        symlink("/dev/null", root.path().join("devnull")).expect("ln");
        let status = std::process::Command::new("mkfifo")
            .arg(root.path().join("fifo"))
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let _sock = std::os::unix::net::UnixListener::bind(root.path().join("sock")).expect("sock");
        let sandbox = Sandbox::new(&[root.path().to_path_buf()]).expect("sandbox");
        let name = sandbox.root_names().next().expect("root").to_owned();
        Fixture {
            _outside: outside,
            _root: root,
            sandbox,
            name,
        }
    }

    #[test]
    fn files_inside_the_root_resolve_to_virtual_paths() {
        let f = fixture();
        let e = f
            .sandbox
            .resolve_entry(&format!("{}/sub/a.txt", f.name))
            .expect("resolve");
        assert_eq!(e.virtual_path, format!("{}/sub/a.txt", f.name));
        assert!(!e.is_dir);
        let e = f
            .sandbox
            .resolve_entry(&format!("/{}/./sub//a.txt", f.name))
            .expect("resolve");
        assert_eq!(e.virtual_path, format!("{}/sub/a.txt", f.name));
        // a symlink that stays inside is followed
        let e = f
            .sandbox
            .resolve_entry(&format!("{}/inside-link", f.name))
            .expect("resolve");
        assert_eq!(e.virtual_path, format!("{}/sub/a.txt", f.name));
        assert_eq!(f.sandbox.resolve("/"), Ok(Target::Roots));
        assert_eq!(f.sandbox.resolve(""), Ok(Target::Roots));
    }

    #[test]
    fn every_escape_is_refused() {
        let f = fixture();
        let n = &f.name;
        let cases = [
            (format!("{n}/../etc/passwd"), SandboxError::ParentReference),
            (format!("{n}/sub/../../x"), SandboxError::ParentReference),
            ("..".to_owned(), SandboxError::ParentReference),
            ("/etc/passwd".to_owned(), SandboxError::OutsideRoots),
            ("etc/passwd".to_owned(), SandboxError::OutsideRoots),
            (format!("{n}/escape-file"), SandboxError::OutsideRoots),
            (
                format!("{n}/escape-dir/secret.txt"),
                SandboxError::OutsideRoots,
            ),
            (format!("{n}/escape-dir"), SandboxError::OutsideRoots),
            (format!("{n}/devnull"), SandboxError::OutsideRoots),
            (format!("{n}/fifo"), SandboxError::SpecialFile),
            (format!("{n}/sock"), SandboxError::SpecialFile),
            (format!("{n}/sub/a.txt\0"), SandboxError::NulByte),
            (
                format!("{n}/{}", "a".repeat(MAX_PATH_LEN)),
                SandboxError::TooLong,
            ),
            (format!("{n}/missing"), SandboxError::NotFound),
        ];
        for (path, expected) in cases {
            assert_eq!(f.sandbox.resolve(&path), Err(expected), "{path:?}");
        }
    }

    #[test]
    fn errors_never_name_a_host_path() {
        let f = fixture();
        let root = f._root.path().to_string_lossy().into_owned();
        for path in [
            "/etc/passwd",
            "x/../../",
            "\0",
            &format!("{}/escape-dir/secret.txt", f.name),
        ] {
            let message = f.sandbox.resolve(path).expect_err(path).to_string();
            assert!(
                !message.contains(&root) && !message.contains("/etc"),
                "{message}"
            );
        }
    }

    #[test]
    fn open_file_reads_regular_files_only() {
        let f = fixture();
        let e = f
            .sandbox
            .resolve_entry(&format!("{}/sub/a.txt", f.name))
            .expect("resolve");
        let mut s = String::new();
        io::Read::read_to_string(&mut f.sandbox.open_file(&e).expect("open"), &mut s)
            .expect("read");
        assert_eq!(s, "hello");
        let dir = f
            .sandbox
            .resolve_entry(&format!("{}/sub", f.name))
            .expect("resolve");
        assert_eq!(
            f.sandbox.open_file(&dir).err(),
            Some(SandboxError::NotAFile)
        );
    }

    #[test]
    fn open_file_refuses_a_symlink_swapped_in_after_resolution() {
        let f = fixture();
        let target = f._root.path().join("swap.txt");
        std::fs::write(&target, "inside").expect("write");
        let e = f
            .sandbox
            .resolve_entry(&format!("{}/swap.txt", f.name))
            .expect("resolve");
        std::fs::remove_file(&target).expect("rm");
        symlink(f._outside.path().join("secret.txt"), &target).expect("ln");
        assert_eq!(
            f.sandbox.open_file(&e).err(),
            Some(SandboxError::OutsideRoots)
        );
    }

    #[test]
    fn open_file_does_not_block_on_a_fifo_swapped_in_after_resolution() {
        let f = fixture();
        let target = f._root.path().join("swap2.txt");
        std::fs::write(&target, "inside").expect("write");
        let e = f
            .sandbox
            .resolve_entry(&format!("{}/swap2.txt", f.name))
            .expect("resolve");
        std::fs::remove_file(&target).expect("rm");
        let status = std::process::Command::new("mkfifo")
            .arg(&target)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        assert_eq!(
            f.sandbox.open_file(&e).err(),
            Some(SandboxError::SpecialFile)
        );
    }

    #[test]
    fn repeated_root_names_are_made_unique() {
        let a = tempfile::tempdir().expect("a");
        let b = tempfile::tempdir().expect("b");
        std::fs::create_dir(a.path().join("data")).expect("mkdir");
        std::fs::create_dir(b.path().join("data")).expect("mkdir");
        let s = Sandbox::new(&[a.path().join("data"), b.path().join("data")]).expect("sandbox");
        assert_eq!(s.root_names().collect::<Vec<_>>(), ["data", "data-2"]);
    }
}
