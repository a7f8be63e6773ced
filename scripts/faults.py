"""Fault injection against the release binary (run by scripts/faults.sh).

Each scenario starts its own server on a loopback port, breaks something while requests flow,
and checks that requests keep being served, that nothing acknowledged is lost, and that the
server says what happened (log line, metric). A scenario that cannot run here says why and is
counted as skipped. Loopback only; every loop is bounded in count and time.
"""

import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/secure-mcp-server"
ONLY = sys.argv[2:]
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}
RESULTS = []


def generate_key():
    out = subprocess.run([BIN, "--generate-key"], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    return lines[0], lines[-1]  # the key, and its keys-file line


class Server:
    def __init__(self, work, args, preexec=None):
        self.log_path = os.path.join(work, f"server-{time.monotonic_ns()}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BIN, "--bind", "127.0.0.1:0", *args], stdout=subprocess.DEVNULL,
                                     stderr=self.log, preexec_fn=preexec)
        deadline = time.monotonic() + 10
        self.addr = None
        while time.monotonic() < deadline and self.addr is None:
            m = re.search(r"listening on https?://([0-9.:]+)", self.text())
            if m:
                self.addr = m.group(1)
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if self.addr is None:
            raise RuntimeError("the server did not start:\n" + self.text())
        self.host, port = self.addr.rsplit(":", 1)
        self.port = int(port)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def modern(self, key, method, params=None, name=None):
        h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
             "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
        if name:
            h["Mcp-Name"] = name
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": dict(params or {}, _meta=META)})
        return self.request("POST", "/mcp", body, h)

    def metric(self, key, name):
        _, body = self.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"})
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name):
                total += float(line.rsplit(" ", 1)[1])
        return total


def eventually(probe, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.05)
    return probe()


class Load:
    """Workers sending tools/list until stopped; every status and error is kept."""

    def __init__(self, server, key, workers=4, seconds=30):
        self.server, self.key = server, key
        self.statuses, self.errors = {}, []
        self.stop_at = time.monotonic() + seconds
        self.stopped = False
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.stopped and time.monotonic() < self.stop_at:
            try:
                status, _ = self.server.modern(self.key, "tools/list")
                with self.lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.errors.append(repr(e))

    def finish(self):
        self.stopped = True
        for t in self.threads:
            t.join(20)
        return self.statuses, self.errors


def scenario(name):
    def wrap(fn):
        def run(work):
            if ONLY and name not in ONLY:
                return
            started = time.monotonic()
            try:
                outcome = fn(work)
            except AssertionError as e:
                outcome = ("FAIL", str(e))
            except Exception as e:  # a broken scenario is a failure too
                outcome = ("FAIL", f"{type(e).__name__}: {e}")
            status, detail = outcome
            RESULTS.append((name, status, detail))
            print(f"{status:5} {name} ({time.monotonic() - started:.1f} s): {detail}", flush=True)
        run.name = name
        return run
    return wrap


# --- the scenarios ---------------------------------------------------------------------------

@scenario("audit disk full, then free")
def audit_full(work):
    key, _ = generate_key()
    real = os.path.join(work, "audit-real.log")
    link = os.path.join(work, "audit.log")
    os.symlink(real, link)
    s = Server(work, ["--api-key", key, "--audit-log", link, "--rate-limit", "100000000"])
    try:
        load = Load(s, key)
        time.sleep(1)
        os.remove(link)
        os.symlink("/dev/full", link)  # every write now fails with ENOSPC
        s.signal(signal.SIGHUP)
        assert eventually(lambda: s.metric(key, "mcp_audit_dropped_events") > 0), "drops not counted"
        assert "could not be written" in s.text(), "the log does not say so"
        os.remove(link)  # space again: a fresh file at the path
        s.signal(signal.SIGHUP)
        assert eventually(lambda: os.path.exists(link) and os.path.getsize(link) > 0), "writing did not resume"
        statuses, errors = load.finish()
        assert not errors and set(statuses) == {200}, f"requests failed: {statuses} {errors[:3]}"
        dropped = s.metric(key, "mcp_audit_dropped_events")
        for path in (real, link):
            with open(path) as f:
                text = f.read()
            assert text.endswith("\n") and all(json.loads(l) for l in text.splitlines()), "a broken line"
        return "PASS", f"{sum(statuses.values())} requests all 200; {dropped:.0f} events counted as dropped; writing resumed"
    finally:
        s.stop()


@scenario("keys file removed, unreadable, half-written during SIGHUP")
def keys_file(work):
    cli_key, _ = generate_key()
    file_key, line = generate_key()
    path = os.path.join(work, "keys")
    with open(path, "w") as f:
        f.write(line + "\n")
    s = Server(work, ["--api-key", cli_key, "--keys-file", path])
    notes = []
    try:
        def ok(key):
            return s.modern(key, "tools/list")[0] == 200
        assert ok(file_key) and ok(cli_key)
        for how in ("removed", "unreadable", "half-written"):
            if how == "removed":
                os.remove(path)
            elif how == "unreadable":
                if os.geteuid() == 0:
                    notes.append("unreadable: skipped (root reads any file)")
                    continue
                os.chmod(path, 0)
            else:
                with open(path, "w") as f:
                    f.write(line[: len(line) // 2])
            before = s.metric(cli_key, "mcp_security_events_total{event=\"keys_reload_failed\"}")
            s.signal(signal.SIGHUP)
            assert eventually(lambda: not ok(file_key)), f"{how}: the file key still works (fail open)"
            assert ok(cli_key), f"{how}: the command-line key stopped working"
            after = s.metric(cli_key, "mcp_security_events_total{event=\"keys_reload_failed\"}")
            assert after > before, f"{how}: not counted"
            if os.path.exists(path):
                os.chmod(path, 0o600)
            with open(path, "w") as f:
                f.write(line + "\n")
            s.signal(signal.SIGHUP)
            assert eventually(lambda: ok(file_key)), f"{how}: the restored file is not taken"
            notes.append(f"{how}: file keys refused, CLI key served, counted, restored")
        assert "every key of the file is refused" in s.text()
        return "PASS", "; ".join(notes)
    finally:
        s.stop()


@scenario("allowed directory renamed, removed, unreadable")
def allowed_dir(work):
    key, _ = generate_key()
    data = os.path.join(work, "data")
    os.makedirs(data)
    with open(os.path.join(data, "a.txt"), "w") as f:
        f.write("still here")
    s = Server(work, ["--api-key", key, "--allow-dir", data])
    try:
        def read():
            status, body = s.modern(key, "tools/call", {"name": "read_file", "arguments": {"path": "data/a.txt"}},
                                    "read_file")
            return status, json.loads(body)["result"]
        status, result = read()
        assert status == 200 and not result.get("isError"), result
        os.rename(data, data + "-moved")
        status, result = read()
        assert status == 200 and "still here" in json.dumps(result), f"renamed: {result}"
        notes = ["renamed: still served through the root's descriptor"]
        if os.geteuid() == 0:
            notes.append("unreadable: skipped (root reads any directory)")
        else:
            os.chmod(data + "-moved", 0)
            status, result = read()
            assert status == 200 and result.get("isError"), f"unreadable: {result}"
            os.chmod(data + "-moved", 0o700)
            notes.append("unreadable: a tool error")
        shutil.rmtree(data + "-moved")
        status, result = read()
        assert status == 200 and result.get("isError"), f"removed: {result}"
        assert "/" + os.path.basename(work) not in json.dumps(result), "a host path leaked"
        notes.append("removed: a tool error naming no path")
        assert s.modern(key, "tools/list")[0] == 200, "the server stopped serving"
        return "PASS", "; ".join(notes)
    finally:
        s.stop()


@scenario("a storm of SIGHUPs under load")
def sighup_storm(work):
    key, line = generate_key()
    path = os.path.join(work, "keys")
    with open(path, "w") as f:
        f.write(line + "\n")
    s = Server(work, ["--keys-file", path, "--audit-log", os.path.join(work, "storm-audit.log"),
                      "--rate-limit", "100000000"])
    try:
        load = Load(s, key, seconds=30)
        for _ in range(100):
            s.signal(signal.SIGHUP)
            time.sleep(0.03)
        statuses, errors = load.finish()
        assert not errors and set(statuses) == {200}, f"{statuses} {errors[:3]}"
        return "PASS", f"100 SIGHUPs in 3 s; {sum(statuses.values())} requests, all 200"
    finally:
        s.stop()


@scenario("SIGTERM under load")
def sigterm(work):
    key, _ = generate_key()
    audit = os.path.join(work, "term-audit.log")
    s = Server(work, ["--api-key", key, "--audit-log", audit, "--shutdown-timeout", "5",
                      "--rate-limit", "100000000"])
    # a 2025 session with its GET stream open
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"protocolVersion": "2025-11-25", "capabilities": {}}})
    conn = http.client.HTTPConnection(s.host, s.port, timeout=15)
    conn.request("POST", "/mcp", init, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    r = conn.getresponse()
    sid = r.getheader("mcp-session-id")
    r.read()
    stream = http.client.HTTPConnection(s.host, s.port, timeout=15)
    stream.request("GET", "/mcp", headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream",
                                          "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
    sr = stream.getresponse()
    assert sr.status == 200
    stream_result = {}

    def read_stream():
        try:
            sr.read()  # to the end: a clean close has the chunked terminator
            stream_result["clean"] = True
        except (http.client.IncompleteRead, OSError) as e:
            stream_result["clean"] = False
            stream_result["error"] = repr(e)
    reader = threading.Thread(target=read_stream)
    reader.start()
    load = Load(s, key, seconds=30)
    time.sleep(1)
    started = time.monotonic()
    s.signal(signal.SIGTERM)
    code = s.proc.wait(15)
    took = time.monotonic() - started
    statuses, errors = load.finish()
    reader.join(10)
    s.log.close()
    # refused connections after the listener closed are expected; a cut response is not
    cut = [e for e in errors if "IncompleteRead" in e or "BadStatusLine" in e and "''" not in e]
    assert code == 0, f"exit code {code}"
    assert took <= 6, f"took {took:.1f} s"
    assert stream_result.get("clean"), f"the GET stream was cut: {stream_result}"
    assert not cut, f"responses cut mid-way: {cut[:3]}"
    with open(audit) as f:
        text = f.read()
    assert text.endswith("\n"), "the audit file ends in half a line"
    for l in text.splitlines():
        json.loads(l)
    return "PASS", (f"exit 0 in {took:.2f} s; {sum(statuses.values())} responses whole; "
                    f"stream closed cleanly; audit file whole ({len(text.splitlines())} lines)")


@scenario("clients that stop reading")
def stop_reading(work):
    key, _ = generate_key()
    data = os.path.join(work, "big")
    os.makedirs(data)
    with open(os.path.join(data, "big.txt"), "w") as f:
        f.write("x" * (1024 * 1024))
    s = Server(work, ["--api-key", key, "--allow-dir", data, "--request-timeout-secs", "2",
                      "--header-timeout-secs", "2", "--rate-limit", "100000000"])
    try:
        def details():
            _, body = s.request("GET", "/health/details", headers={"Authorization": f"Bearer {key}"})
            return json.loads(body)
        before = details()
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "read_file", "arguments": {"path": "big/big.txt"}, "_meta": META}}).encode()
        head = (f"POST /mcp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n"
                "Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\n"
                "Mcp-Method: tools/call\r\nMcp-Name: read_file\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        stalled = []
        for _ in range(4):
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.connect((s.host, s.port))
            # 16 pipelined 1 MiB answers: more than the socket buffers hold; never read
            c.sendall((head + body) * 16)
            stalled.append(c)
        time.sleep(1)
        peak = details()["memory"]["residentBytes"]
        assert eventually(lambda: details()["connections"] <= before["connections"], 15), \
            f"connections held: {details()['connections']}"
        after = details()
        for c in stalled:
            c.close()
        grown = (peak - before["memory"]["residentBytes"]) / 2**20
        assert grown < 64, f"RSS grew {grown:.1f} MiB"
        assert s.modern(key, "tools/list")[0] == 200
        return "PASS", (f"4 clients not reading 16 pipelined 1 MiB responses each: RSS "
                        f"+{grown:.1f} MiB at most, connections back to {after['connections']} "
                        "after the stall timeout")
    finally:
        s.stop()


@scenario("file descriptor exhaustion")
def fd_exhaustion(work):
    key, _ = generate_key()

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    s = Server(work, ["--api-key", key, "--header-timeout-secs", "60",
                      "--max-connections-per-ip", "1000"], preexec=low_limit)
    held = []
    try:
        keep = http.client.HTTPConnection(s.host, s.port, timeout=10)
        keep.request("GET", "/health")
        r = keep.getresponse()
        r.read()
        assert r.status == 200
        for _ in range(80):
            c = socket.socket()
            c.settimeout(2)
            try:
                c.connect((s.host, s.port))
                held.append(c)
            except OSError:
                c.close()
                break
        assert eventually(lambda: "accept failed" in s.text(), 5), "no word of the exhaustion"
        # an open connection is still served
        keep.request("GET", "/health")
        r = keep.getresponse()
        r.read()
        assert r.status == 200, "the open connection was not served"
        keep.close()
        for c in held:
            c.close()
        held.clear()

        def fresh():
            try:
                return s.request("GET", "/health", timeout=2)[0] == 200
            except OSError:
                return False
        assert eventually(fresh, 10), "no recovery once descriptors were free"
        lines = s.text().count("accept failed")
        return "PASS", (f"descriptor limit 48: refused while exhausted ({lines} throttled log lines), "
                        "kept serving the open connection, recovered")
    finally:
        for c in held:
            c.close()
        s.stop()


def main():
    scenarios = [audit_full, keys_file, allowed_dir, sighup_storm, sigterm, stop_reading, fd_exhaustion]
    for run in scenarios:
        work = tempfile.mkdtemp(prefix="faults-")
        try:
            run(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    failed = sum(1 for _, status, _ in RESULTS if status == "FAIL")
    passed = sum(1 for _, status, _ in RESULTS if status == "PASS")
    skipped = sum(1 for _, status, _ in RESULTS if status == "SKIP")
    print(f"faults: {passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
