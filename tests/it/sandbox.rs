//! The file tools and resources over a real directory with real symlinks, a FIFO and a socket.

use axum::http::StatusCode;
use clap::Parser;
use secure_mcp_server::app::AppState;
use secure_mcp_server::config::{Cli, Config};
use serde_json::{Value, json};

use crate::support::{Harness, KEY, first_text};

fn assert_refused(result: &Value, context: &str, root: &str, outside: &str) {
    assert_eq!(result["isError"], true, "{context}: {result}");
    let text = result.to_string();
    assert!(!text.contains(root), "{context}: root path leaked: {text}");
    assert!(
        !text.contains(outside),
        "{context}: outside path leaked: {text}"
    );
    assert!(
        !text.contains("TOP-SECRET"),
        "{context}: outside content leaked: {text}"
    );
}

#[tokio::test]
async fn every_sandbox_escape_is_refused_by_every_file_tool() {
    let h = Harness::new();
    let root = h.root().to_string_lossy().into_owned();
    let outside = h.outside.path().to_string_lossy().into_owned();
    let escapes = [
        "data/../hello.txt".to_owned(),
        "../etc/passwd".to_owned(),
        "data/sub/../../../etc/passwd".to_owned(),
        "/etc/passwd".to_owned(),
        format!("{root}/hello.txt"),
        format!("{outside}/secret.txt"),
        "data/link-out".to_owned(),
        "data/dir-out/secret.txt".to_owned(),
        "data/dir-out".to_owned(),
        "data/dev-zero".to_owned(),
        "data/fifo".to_owned(),
        "data/socket".to_owned(),
        "data/hello.txt\u{0}.png".to_owned(),
    ];
    for path in &escapes {
        for tool in ["read_file", "stat_path", "list_directory"] {
            let result = h.call_tool(tool, json!({"path": path})).await;
            assert_refused(&result, &format!("{tool} {path:?}"), &root, &outside);
        }
        let result = h
            .call_tool("search_files", json!({"path": path, "pattern": "*"}))
            .await;
        assert_refused(&result, &format!("search_files {path:?}"), &root, &outside);
    }
}

#[tokio::test]
async fn refusals_say_why_without_naming_paths() {
    let h = Harness::new();
    for (path, expected) in [
        ("data/../x", "path must not contain '..'"),
        ("/etc/passwd", "path is outside the allowed directories"),
        (
            "data/link-out",
            "path goes through a symbolic link, which is not followed",
        ),
        ("data/fifo", "not a regular file or directory"),
        ("data/missing.txt", "no such file or directory"),
    ] {
        let result = h.call_tool("read_file", json!({"path": path})).await;
        assert_eq!(first_text(&result), expected, "{path}");
    }
}

#[tokio::test]
async fn the_fifo_is_refused_without_blocking() {
    let h = Harness::new();
    let call = h.call_tool("read_file", json!({"path": "data/fifo"}));
    let result = tokio::time::timeout(std::time::Duration::from_secs(5), call)
        .await
        .expect("a FIFO must never block a read");
    assert_eq!(result["isError"], true);
}

#[tokio::test]
async fn files_inside_are_read_listed_statted_and_found() {
    let h = Harness::new();
    let r = h
        .call_tool("read_file", json!({"path": "data/hello.txt"}))
        .await;
    assert_eq!(first_text(&r), "hello world\n");
    let r = h
        .call_tool("read_file", json!({"path": "/data/link-inside"}))
        .await;
    assert_eq!(
        first_text(&r),
        "path goes through a symbolic link, which is not followed",
        "no symlink is followed, even one that points inside the root"
    );
    let r = h
        .call_tool(
            "read_file",
            json!({"path": "data/hello.txt", "offset": 6, "length": 5}),
        )
        .await;
    assert_eq!(first_text(&r), "world");
    assert!(
        r["content"][1]["text"]
            .as_str()
            .is_some_and(|t| t.contains("offset 11"))
    );
    let r = h
        .call_tool("read_file", json!({"path": "data/binary.bin"}))
        .await;
    assert_eq!(r["content"][0]["type"], "resource");
    assert_eq!(r["content"][0]["resource"]["blob"], "AJ+Slv8=");

    let r = h.call_tool("list_directory", json!({"path": "/"})).await;
    assert_eq!(
        r["structuredContent"]["entries"],
        json!([{"name": "data", "type": "directory"}])
    );
    let r = h.call_tool("list_directory", json!({"path": "data"})).await;
    let entries = r["structuredContent"]["entries"]
        .as_array()
        .expect("entries")
        .clone();
    let names: Vec<&str> = entries.iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"hello.txt") && names.contains(&"sub") && names.contains(&"link-out"));
    let link = entries
        .iter()
        .find(|e| e["name"] == "link-out")
        .expect("link");
    assert_eq!(link["type"], "symlink", "links are listed, not followed");

    let r = h
        .call_tool("stat_path", json!({"path": "data/sub/notes.md"}))
        .await;
    assert_eq!(r["structuredContent"]["type"], "file");
    assert_eq!(r["structuredContent"]["size"], 8);
    assert_eq!(r["structuredContent"]["path"], "data/sub/notes.md");

    let r = h
        .call_tool("search_files", json!({"path": "/", "pattern": "*.json"}))
        .await;
    assert_eq!(
        r["structuredContent"]["matches"],
        json!([{"path": "data/sub/deeper/data.json", "type": "file"}])
    );
    let r = h
        .call_tool(
            "search_files",
            json!({"path": "data", "pattern": "*", "maxResults": 2}),
        )
        .await;
    assert_eq!(
        r["structuredContent"]["matches"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(r["structuredContent"]["truncated"], true);
}

#[tokio::test]
async fn search_does_not_follow_symlinks_out() {
    let h = Harness::new();
    let r = h
        .call_tool(
            "search_files",
            json!({"path": "data", "pattern": "secret*"}),
        )
        .await;
    assert_eq!(r["structuredContent"]["matches"], json!([]));
}

#[tokio::test]
async fn resources_list_pages_through_files_and_reads_them() {
    let h = Harness::new();
    for i in 0..150 {
        std::fs::write(
            h.root().join(format!("sub/file-{i:03}.txt")),
            format!("n{i}"),
        )
        .expect("write");
    }
    let mut uris = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let r = h.modern("resources/list", params).await;
        let result = r.json()["result"].clone();
        for res in result["resources"].as_array().expect("resources") {
            uris.push(res["uri"].as_str().expect("uri").to_owned());
        }
        match result["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    // 150 + hello.txt, binary.bin, big.txt, sub/notes.md, sub/deeper/data.json; no links, FIFO or socket
    assert_eq!(uris.len(), 155, "{uris:?}");
    assert!(uris.contains(&"file:///data/hello.txt".to_owned()));
    assert!(
        !uris
            .iter()
            .any(|u| u.contains("link") || u.contains("fifo") || u.contains("socket"))
    );
    let mut dedup = uris.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), uris.len(), "pages do not overlap");

    let r = h
        .modern("resources/read", json!({"uri": "file:///data/hello.txt"}))
        .await;
    let c = &r.json()["result"]["contents"][0];
    assert_eq!(c["text"], "hello world\n");
    assert_eq!(c["mimeType"], "text/plain");
    let r = h
        .modern("resources/read", json!({"uri": "file:///data/binary.bin"}))
        .await;
    assert_eq!(r.json()["result"]["contents"][0]["blob"], "AJ+Slv8=");
    let r = h.modern("resources/templates/list", json!({})).await;
    assert_eq!(
        r.json()["result"]["resourceTemplates"][0]["uriTemplate"],
        "file:///{+path}"
    );
}

#[tokio::test]
async fn resource_reads_apply_the_same_checks() {
    let h = Harness::new();
    for uri in [
        "file:///data/link-out",
        "file:///data/dir-out/secret.txt",
        "file:///data/%2E%2E/x",
        "file:///data/fifo",
        "file:///data/dev-zero",
        "file:///data/sub",
    ] {
        let r = h.modern("resources/read", json!({"uri": uri})).await;
        assert_eq!(r.code(), -32602, "{uri}");
        assert!(!r.text.contains("TOP-SECRET"));
    }
}

#[tokio::test]
async fn without_allowed_directories_no_file_tools_or_resources_are_offered() {
    let cli = Cli::try_parse_from(["secure-mcp-server", "--api-key", KEY]).expect("cli");
    let config = Config::from_cli(cli, None).expect("config");
    let h = Harness::from_state(AppState::from_config(&config).expect("state"));
    let r = h.modern("tools/list", json!({})).await;
    let tools = r.json()["result"]["tools"].clone();
    let names: Vec<&str> = tools
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["system_info"]);
    let r = h.modern("resources/list", json!({})).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, -32601));
    let r = h.modern("server/discover", json!({})).await;
    assert!(
        r.json()["result"]["capabilities"]
            .get("resources")
            .is_none()
    );
}

#[tokio::test]
async fn system_info_reports_the_host() {
    let h = Harness::new();
    let r = h.call_tool("system_info", json!({})).await;
    assert_eq!(r["isError"], false);
    let s = &r["structuredContent"];
    assert!(s["cpuCount"].as_u64().is_some_and(|n| n >= 1));
    assert!(s["memory"]["totalBytes"].as_u64().is_some_and(|n| n > 0));
    assert!(s["processResidentBytes"].as_u64().is_some_and(|n| n > 0));
}
