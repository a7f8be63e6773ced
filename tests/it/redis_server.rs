//! A throwaway `redis-server` on a loopback port, for the fleet tests. The tests need the
//! distribution's `redis-server` (`.ci/run` installs it); without it they fail and say so.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RedisServer {
    pub port: u16,
    extra: Vec<String>,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Started with extra `redis-server` arguments (`--requirepass`, say).
    pub fn start_with(extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = Self {
            port,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
            _dir: dir,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts (again) on the same port, and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(self._dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server) is needed by the fleet tests");
        self.child = Some(child);
        for _ in 0..200 {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    /// Kills it (by its PID) and waits for it to end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        // Up: PONG, or the refusal of a server that wants a password.
        let mut answer = [0u8; 1];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut answer).is_ok()
    }

    /// Every key Redis holds, with its fields and values, as text.
    pub async fn dump(&self) -> Vec<String> {
        let client = redis::Client::open(self.url()).expect("url");
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut c)
            .await
            .expect("KEYS");
        let mut out = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut c)
                .await
                .expect("TYPE");
            let body: Vec<String> = match kind.as_str() {
                "hash" => redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut c)
                    .await
                    .expect("HGETALL"),
                "string" => vec![
                    redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut c)
                        .await
                        .expect("GET"),
                ],
                other => vec![other.to_owned()],
            };
            out.push(format!("{key} {}", body.join(" ")));
        }
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `n` instances sharing `redis`, each with `extra` flags; the tempdir holds the secret.
pub fn fleet(
    redis: &RedisServer,
    n: usize,
    extra: &[&str],
) -> (Vec<crate::support::Harness>, tempfile::TempDir) {
    fleet_of(redis, n, extra, crate::support::Harness::with_args)
}

/// `n` instances sharing `redis`, each made by `make` from the fleet's flags and `extra`.
pub fn fleet_of(
    redis: &RedisServer,
    n: usize,
    extra: &[&str],
    make: impl Fn(&[&str]) -> crate::support::Harness,
) -> (Vec<crate::support::Harness>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("state-secret");
    std::fs::write(&secret, "Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe5rSd1hGkq\n").expect("write");
    std::fs::set_permissions(
        &secret,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .expect("chmod");
    let (url, secret, size) = (
        redis.url(),
        secret.to_string_lossy().into_owned(),
        n.to_string(),
    );
    let mut args = vec![
        "--redis-url",
        &url,
        "--state-secret-file",
        &secret,
        "--fleet-size",
        &size,
    ];
    args.extend_from_slice(extra);
    ((0..n).map(|_| make(&args)).collect(), dir)
}

/// Waits (15 s at most) until every instance's link to Redis is up again: the probe backs off
/// from 100 ms, so it finds a restarted Redis within a few seconds.
pub async fn wait_until_up(instances: &[crate::support::Harness]) {
    let links: Vec<_> = instances
        .iter()
        .map(|h| h.state.fleet.clone().expect("a fleet").link)
        .collect();
    for _ in 0..150 {
        if links.iter().all(|l| l.is_up()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the link to Redis did not come back");
}
