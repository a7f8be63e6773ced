//! The sandbox resolver, from a virtual path to a decision on a real directory tree with
//! symlinks out, in, and to devices: never a panic, and whatever it accepts is open on a
//! descriptor inside the root.
#![no_main]

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use secure_mcp_server::files::sandbox::{Sandbox, Target};

struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    sandbox: Sandbox,
}

fn tree() -> &'static Tree {
    static T: OnceLock<Tree> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("data").canonicalize().unwrap_or_else(|_| {
            std::fs::create_dir(dir.path().join("data")).expect("mkdir");
            dir.path().join("data").canonicalize().expect("canonical")
        });
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(root.join("a/b/file.txt"), "in").expect("write");
        std::fs::write(root.join("top.txt"), "in").expect("write");
        std::fs::write(outside.join("secret"), "out").expect("write");
        let link = |target: &std::path::Path, name: &str| {
            let _ = std::os::unix::fs::symlink(target, root.join(name));
        };
        link(&outside, "out");
        link(&outside.join("secret"), "secret");
        link(&root.join("a"), "a-link");
        link(std::path::Path::new("/dev/zero"), "zero");
        link(std::path::Path::new("../outside"), "rel");
        link(std::path::Path::new("/"), "slash");
        let sandbox = Sandbox::new(std::slice::from_ref(&root)).expect("sandbox");
        Tree {
            _dir: dir,
            root,
            sandbox,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let t = tree();
    // aim at the root most of the time
    let requested = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("data/{path}")
    };
    if let Ok(Target::Entry(entry)) = t.sandbox.resolve(&requested) {
        assert!(entry.virtual_path == "data" || entry.virtual_path.starts_with("data/"));
        assert!(!entry.virtual_path.split('/').any(|c| c == ".."));
        let real = std::fs::read_link(format!("/proc/self/fd/{}", entry.fd().as_raw_fd()))
            .expect("fd path");
        assert!(real.starts_with(&t.root), "{requested:?} opened {real:?}");
    }
});
