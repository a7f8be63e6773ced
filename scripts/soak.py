"""The soak driver of scripts/soak.sh: a bounded, mixed workload against a running server.

Every request goes to the loopback address given, from a source address in 127.0.0.0/8 that
churns (thousands over a run). Each kind of request has the statuses it may get; anything else,
any 5xx, or a connection error on a well-formed request is a failure. A 429 is never a failure
(a client over a budget is told so); those outside the deliberate floods are counted and shown. Every 10 s the server's
RSS, open descriptors, threads, live sessions and rate-limiter size are sampled. At the end:
the RSS slope after the warm-up, descriptors back to the baseline, and the audit file holding
every answered request exactly once (an over-limit 429 may instead be counted in a summary's
`suppressed`).
"""

import argparse
import http.client
import json
import os
import random
import socket
import threading
import time

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}


class Soak:
    def __init__(self, args):
        self.host, port = args.addr.rsplit(":", 1)
        self.port = int(port)
        self.key = args.key
        self.pid = args.pid
        self.lock = threading.Lock()
        self.request_ids = []          # X-Request-Id of every answered request
        self.over_limit = 0            # 429s of every kind
        self.limited = {}              # kind -> 429s outside the deliberate floods
        self.limited_by = {}           # the budget (RateLimit-Policy) those 429s named
        self.counts = {}               # kind -> answered
        self.failures = []
        self.conn_errors = 0
        self.addresses = set()
        self.deadline = 0.0

    # --- plumbing -------------------------------------------------------------------------
    def source(self):
        # a pool of 4,000 addresses that clients come and go from
        n = random.randrange(4000)
        return "127.%d.%d.%d" % (1 + n // 62500, (n // 250) % 250, 2 + n % 248)

    def connect(self, source=None):
        source = source or self.source()
        with self.lock:
            self.addresses.add(source)
        return http.client.HTTPConnection(self.host, self.port, timeout=15,
                                          source_address=(source, 0))

    def note(self, kind, status, headers, allowed):
        rid = headers.get("x-request-id")
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if rid:
                # a 429 may be summarised in the audit rather than written alone
                if status == 429:
                    self.over_limit += 1
                else:
                    self.request_ids.append(rid)
            # a client that happens over its budget is told so: a defence, not a failure
            if status == 429 and kind != "over_limit":
                self.limited[kind] = self.limited.get(kind, 0) + 1
                budget = headers.get("ratelimit-policy", "no RateLimit-Policy")
                self.limited_by[budget] = self.limited_by.get(budget, 0) + 1
            elif status >= 500 or status not in allowed:
                policy = headers.get("ratelimit-policy", "")
                self.failures.append(f"{kind}: status {status} {policy}".rstrip())

    def call(self, kind, method, path, body=None, headers=None, allowed=(200,), source=None):
        conn = self.connect(source)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            self.note(kind, r.status, {k.lower(): v for k, v in r.getheaders()}, allowed)
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except (OSError, http.client.HTTPException) as e:
            with self.lock:
                self.conn_errors += 1
                self.failures.append(f"{kind}: connection error {e!r}")
            return None, {}, b""
        finally:
            conn.close()

    def auth(self, extra=None):
        h = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json",
             "Accept": "application/json, text/event-stream"}
        h.update(extra or {})
        return h

    def modern(self, method, params, name=None):
        h = self.auth({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method})
        if name:
            h["Mcp-Name"] = name
        params = dict(params, _meta=META)
        return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}), h

    # --- the workload ---------------------------------------------------------------------
    def tools_list(self):
        body, h = self.modern("tools/list", {})
        self.call("tools/list", "POST", "/mcp", body, h)

    def read_file(self):
        body, h = self.modern("tools/call", {"name": "read_file",
                                             "arguments": {"path": "data/file4k.txt"}}, "read_file")
        self.call("tools/call read_file", "POST", "/mcp", body, h)

    def search(self):
        body, h = self.modern("tools/call", {"name": "search_files",
                                             "arguments": {"path": "data", "pattern": "*.md"}},
                              "search_files")
        self.call("tools/call search_files", "POST", "/mcp", body, h)

    def session(self):
        init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {"sampling": {}},
            "clientInfo": {"name": "soak", "version": "1"}}})
        status, headers, _ = self.call("2025 initialize", "POST", "/mcp", init, self.auth())
        sid = headers.get("mcp-session-id")
        if status != 200 or not sid:
            return
        h = self.auth({"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
        self.call("2025 notification", "POST", "/mcp",
                  json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), h,
                  allowed=(202,))
        call = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "list_directory", "arguments": {"path": "data"}}})
        self.call("2025 tools/call", "POST", "/mcp", call, h)
        choice = random.random()
        if choice < 0.4:
            self.call("2025 delete", "DELETE", "/mcp", None, h, allowed=(204,))
        elif choice < 0.7:
            self.stream(h)
        # else: left to expire

    def stream(self, h):
        conn = self.connect()
        try:
            conn.request("GET", "/mcp", headers=dict(h, Accept="text/event-stream"))
            r = conn.getresponse()
            self.note("2025 GET stream", r.status, {k.lower(): v for k, v in r.getheaders()},
                      (200,))
            if r.status == 200:
                r.fp.read1(64) if hasattr(r.fp, "read1") else None
        except (OSError, http.client.HTTPException) as e:
            with self.lock:
                self.conn_errors += 1
                self.failures.append(f"GET stream: connection error {e!r}")
        finally:
            conn.close()  # the client drops the stream

    def rejections(self):
        body, h = self.modern("tools/list", {})
        kind = random.randrange(5)
        if kind == 0:
            h.pop("Authorization")
            self.call("no key", "POST", "/mcp", body, h, allowed=(401,))
        elif kind == 1:
            h["Authorization"] = "Bearer smcp_wrong_key_0000000000000000000000000000000000"
            self.call("wrong key", "POST", "/mcp", body, h, allowed=(401,))
        elif kind == 2:
            h["Origin"] = "https://evil.example.com"
            self.call("foreign origin", "POST", "/mcp", body, h, allowed=(403,))
        elif kind == 3:
            self.call("oversized body", "POST", "/mcp", "x" * 70000, h, allowed=(413,))
        else:
            self.call("malformed body", "POST", "/mcp", "{bad", h, allowed=(400,))

    def vanish(self):
        s = socket.socket()
        try:
            s.bind((self.source(), 0))
            s.connect((self.host, self.port))
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
                      + self.key.encode() + b"\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 500\r\n\r\n{\"jsonrpc\":")
        except OSError:
            pass
        finally:
            s.close()
        with self.lock:
            self.counts["vanished mid-request"] = self.counts.get("vanished mid-request", 0) + 1

    def flood(self):
        # one address over its limit (50 per 10 s): its 429s are expected
        source = "127.200.0.%d" % random.randrange(2, 250)
        for _ in range(80):
            if time.monotonic() > self.deadline:
                return
            self.call("over_limit", "GET", "/health", allowed=(200, 429), source=source)

    def worker(self):
        ops = [(self.tools_list, 30), (self.read_file, 20), (self.search, 5), (self.session, 10),
               (self.rejections, 15), (self.vanish, 3), (self.flood, 0.2)]
        fns = [f for f, _ in ops]
        weights = [w for _, w in ops]
        while time.monotonic() < self.deadline:
            random.choices(fns, weights)[0]()

    # --- sampling -------------------------------------------------------------------------
    def proc(self):
        rss = threads = 0
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        return rss, fds, threads

    def details(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10,
                                          source_address=("127.250.0.1", 0))
        try:
            conn.request("GET", "/health/details", headers={"Authorization": f"Bearer {self.key}"})
            r = conn.getresponse()
            d = json.loads(r.read())
            rid = r.getheader("x-request-id")
            if rid:
                with self.lock:
                    self.request_ids.append(rid)
            return d.get("sessions", -1), d.get("rateLimitClients", -1)
        finally:
            conn.close()


def slope_per_minute(points):
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mx) * (v - my) for t, v in points) / den * 60


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("--audit", required=True)
    p.add_argument("--workers", type=int, default=12)
    args = p.parse_args()
    s = Soak(args)
    time.sleep(0.5)
    _, base_fds, _ = s.proc()
    start = time.monotonic()
    s.deadline = start + args.seconds
    threads = [threading.Thread(target=s.worker, daemon=True) for _ in range(args.workers)]
    for t in threads:
        t.start()
    samples = []
    every = 10
    print(f"{'t(s)':>5} {'RSS MiB':>8} {'fds':>5} {'threads':>7} {'sessions':>8} {'limiter':>8} {'answered':>9}")
    while True:
        now = time.monotonic()
        rss, fds, nthreads = s.proc()
        sessions, limiter = s.details()
        with s.lock:
            answered = sum(v for k, v in s.counts.items() if k != "vanished mid-request")
        samples.append((now - start, rss))
        print(f"{now - start:5.0f} {rss / 2**20:8.1f} {fds:5d} {nthreads:7d} {sessions:8d} {limiter:8d} {answered:9d}", flush=True)
        if now >= s.deadline:
            break
        time.sleep(min(every, max(0.0, s.deadline - time.monotonic())))
    for t in threads:
        t.join(timeout=30)
    # descriptors back to the baseline once the clients are gone
    fds_after = None
    for _ in range(60):
        _, fds_after, _ = s.proc()
        if fds_after <= base_fds:
            break
        time.sleep(0.5)
    # a clean stop: exit 0, and the audit file complete (summaries flushed)
    os.kill(args.pid, 15)
    for _ in range(300):
        try:
            os.kill(args.pid, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{args.pid}/stat") as f:
            if f.read().split(") ")[1].startswith("Z"):
                break
        time.sleep(0.05)

    # the slope is taken after the first minute (allocator arenas, the limiter table and the
    # session table fill during it); a run too short to have three samples after it is not
    # judged on the slope
    warm = [(t, v) for t, v in samples if t >= 60]
    judged = len(warm) >= 3
    mean = sum(v for _, v in warm) / len(warm) if warm else 1
    slope = slope_per_minute(warm) / mean * 100 if judged else 0.0
    peak = max(v for _, v in samples)

    # the audit file: every answered request exactly once
    seen = {}
    audited_429 = suppressed = 0
    with open(args.audit) as f:
        for line in f:
            e = json.loads(line)
            seen[e["request_id"]] = seen.get(e["request_id"], 0) + 1
            if e.get("status") == 429:
                audited_429 += 1
            suppressed += e.get("suppressed", 0)
    missing = [r for r in s.request_ids if seen.get(r, 0) == 0]
    doubled = [r for r, n in seen.items() if n > 1]
    over_limit_ok = s.over_limit <= audited_429 + suppressed

    print()
    for kind in sorted(s.counts):
        print(f"  {kind:28} {s.counts[kind]:7d}")
    if s.limited:
        print("  429s outside the floods: " + ", ".join(f"{k} {v}" for k, v in sorted(s.limited.items())))
        # q=10;w=60 is the failed-authentication budget: an address that drew ten of the
        # wrong-key and no-key rejections within a minute is refused for the rest of it
        print("    by budget: " + ", ".join(f"{k} {v}" for k, v in sorted(s.limited_by.items())))
    print(f"  source addresses: {len(s.addresses)}; over-limit 429s {s.over_limit}, "
          f"audited {audited_429} + summarised {suppressed}")
    slope_text = f"{slope:+.2f}% per minute" if judged else "not judged (run under 90 s)"
    print(f"  RSS peak {peak / 2**20:.1f} MiB, slope after the first minute {slope_text}; "
          f"descriptors {base_fds} before, {fds_after} after")
    problems = list(dict.fromkeys(s.failures))[:10]
    if judged and slope >= 1.0:
        problems.append(f"RSS grows {slope:.2f}% per minute")
    if fds_after is None or fds_after > base_fds:
        problems.append(f"descriptors {fds_after} > baseline {base_fds}")
    if missing:
        problems.append(f"{len(missing)} answered requests missing from the audit file")
    if doubled:
        problems.append(f"{len(doubled)} request ids audited twice")
    if not over_limit_ok:
        problems.append("over-limit 429s not all accounted for in the audit")
    answered = len(s.request_ids) + s.over_limit
    if problems:
        print("soak: FAIL: " + "; ".join(problems))
        raise SystemExit(1)
    print(f"soak: PASS: {answered} requests in {args.seconds} s, 0 failures, "
          f"0 connection errors, RSS slope {slope_text}, descriptors back to {fds_after}")


if __name__ == "__main__":
    main()
