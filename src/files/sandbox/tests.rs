//! Unit tests of [`super`].

use super::*;

#[test]
fn the_message_of_a_refusal_is_what_it_displays() {
    use SandboxError::*;
    for e in [
        NulByte,
        TooLong,
        ParentReference,
        OutsideRoots,
        Symlink,
        NotFound,
        SpecialFile,
        NotAFile,
        NotADirectory,
        PermissionDenied,
        Io,
    ] {
        assert_eq!(e.message(), e.to_string());
    }
}
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
    // no symlink is followed, not even one that points inside
    assert_eq!(
        f.sandbox.resolve(&format!("{}/inside-link", f.name)),
        Err(SandboxError::Symlink)
    );
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
        (format!("{n}/escape-file"), SandboxError::Symlink),
        (format!("{n}/escape-dir/secret.txt"), SandboxError::Symlink),
        (format!("{n}/escape-dir"), SandboxError::Symlink),
        (format!("{n}/escape-dir/"), SandboxError::Symlink),
        (format!("{n}/devnull"), SandboxError::Symlink),
        (format!("{n}/sub/a.txt/x"), SandboxError::NotFound),
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
    io::Read::read_to_string(&mut f.sandbox.open_file(&e).expect("open"), &mut s).expect("read");
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

fn read_entry(f: &Fixture, e: &Entry) -> String {
    let mut s = String::new();
    io::Read::read_to_string(&mut f.sandbox.open_file(e).expect("open"), &mut s).expect("read");
    s
}

#[test]
fn a_symlink_swapped_in_after_resolution_cannot_redirect_the_read() {
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
        read_entry(&f, &e),
        "inside",
        "the resolved file, by descriptor"
    );
}

#[test]
fn a_fifo_swapped_in_after_resolution_is_never_opened() {
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
    assert_eq!(read_entry(&f, &e), "inside");
}

#[test]
fn a_directory_swapped_for_a_symlink_is_not_listed_through() {
    let f = fixture();
    let dir = f
        .sandbox
        .resolve_entry(&format!("{}/sub", f.name))
        .expect("resolve");
    let sub = f._root.path().join("sub");
    std::fs::rename(&sub, f._root.path().join("sub-moved")).expect("mv");
    symlink(f._outside.path(), &sub).expect("ln");
    let names: Vec<String> = f
        .sandbox
        .list(&dir, 100)
        .expect("list")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["a.txt"], "the resolved directory, by descriptor");
    assert_eq!(
        f.sandbox.resolve(&format!("{}/sub", f.name)),
        Err(SandboxError::Symlink)
    );
}

#[test]
fn the_component_walk_refuses_what_openat2_refuses() {
    let f = fixture();
    let root = f.sandbox.roots[0].fd.as_fd();
    for (parts, expected) in [
        (vec!["escape-dir"], SandboxError::Symlink),
        (vec!["sub", "a.txt"], SandboxError::NotFound),
        (vec!["missing"], SandboxError::NotFound),
    ] {
        assert_eq!(
            open_dir_by_components(root, &parts).err(),
            Some(expected),
            "{parts:?}"
        );
    }
    assert!(open_dir_by_components(root, &["sub"]).is_ok());
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
