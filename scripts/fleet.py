"""The fleet driver of scripts/fleet.sh: Redis, three instances and HAProxy on loopback, the
checks of a fleet, and a table of what they measured.

Every process this starts is stopped by its PID at the end (or when a check fails). Every
load loop is bounded in count and in time. Clients use source addresses in 127.0.0.0/8;
HAProxy passes the client's address in X-Forwarded-For and the instances trust it from
127.0.0.1 only.

Checks (each a row of the table; any failure exits 1):
  budget     one client over its limit through the balancer: at most 1.1 N in any window W
  sessions   a 2025 session minted on one instance works on the others, is 404 for another
             key, and a DELETE on one ends it on all
  rounds     a three-round 2026 request whose rounds land on three instances completes
  outage     Redis killed under load: no 5xx, no lost request, the fallback counted
  recovery   Redis restarted: every instance back on shared budgets, a client held to 1.1 N
  instance   one instance stopped (SIGTERM) under load: every request answered, none 5xx;
             another killed (SIGKILL): at most the requests in flight at that instant fail
             (never one already answered); the sessions each minted live on the others
"""

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

META_VERSION = "2026-07-28"
LIMIT, WINDOW = 50, 5          # --rate-limit, --rate-window of the instances
KEY1 = "fleet-key-one-Vx9fQ2mZ7pL4wR8tY3nB6cJ0aUe"
KEY2 = "fleet-key-two-Hs5dG1aK9eU7oI3rT6yP2xQ8wZm"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    def __init__(self, args):
        self.binary = args.binary
        self.work = args.work
        self.redis_port = free_port()
        self.ports = [free_port() for _ in range(3)]
        self.balancer = free_port()
        self.procs = {}            # name -> Popen
        self.rows = []             # (check, ok, figures)
        self.scrapes = 0

    # --- processes ------------------------------------------------------------------------
    def start(self, name, argv, log):
        out = open(os.path.join(self.work, log), "ab")
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def stop(self, name, sig=signal.SIGTERM):
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)

    def wait_port(self, port, seconds=15):
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"fleet: nothing listens on {port}")

    def start_redis(self):
        self.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port",
                             str(self.redis_port), "--save", "", "--appendonly", "no",
                             "--dir", self.work], "redis.log")
        self.wait_port(self.redis_port)

    def start_instance(self, i):
        secret = os.path.join(self.work, "state-secret")
        self.start(f"i{i}", [
            self.binary, "--bind", f"127.0.0.1:{self.ports[i]}",
            "--api-key", KEY1, "--api-key", KEY2,
            "--redis-url", f"redis://127.0.0.1:{self.redis_port}/",
            "--state-secret-file", secret, "--fleet-size", "3",
            "--rate-limit", str(LIMIT), "--rate-window", str(WINDOW),
            "--trusted-proxy", "127.0.0.1/32",
            "--max-connections-per-ip", "1024",
        ], f"instance{i}.log")

    def start_balancer(self):
        servers = "\n".join(
            f"    server i{i} 127.0.0.1:{p} check" for i, p in enumerate(self.ports))
        config = f"""global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
frontend mcp
    bind 127.0.0.1:{self.balancer}
    option forwardfor
    default_backend instances
backend instances
    # a session's requests (and its GET stream) stay on one instance; others go round
    balance hdr(Mcp-Session-Id)
    hash-type consistent
    option httpchk GET /health
    http-check expect status 200
    # health checks come from the balancer's own address and count against its budget
    default-server inter 1s fall 2 rise 2
{servers}
"""
        path = os.path.join(self.work, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        self.start("haproxy", ["haproxy", "-db", "-f", path], "haproxy.log")
        self.wait_port(self.balancer)

    # --- requests ---------------------------------------------------------------------------
    def request(self, port, method, path, body=None, headers=None, source="127.0.0.1"):
        """(status, headers, body) or (None, {}, error) on a connection error."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                          source_address=(source, 0))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except OSError as e:
            return None, {}, str(e).encode()
        finally:
            conn.close()

    def modern(self, port, method, params, key=KEY1, source="127.0.0.1", caps=None):
        params = dict(params)
        params["_meta"] = {"io.modelcontextprotocol/protocolVersion": META_VERSION,
                           "io.modelcontextprotocol/clientCapabilities": caps or {}}
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": META_VERSION, "Mcp-Method": method}
        if "name" in params:
            headers["Mcp-Name"] = params["name"]
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        return self.request(port, "POST", "/mcp", body, headers, source)

    def legacy(self, port, message, key=KEY1, session=None):
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream"}
        if session:
            headers["Mcp-Session-Id"] = session
        return self.request(port, "POST", "/mcp", json.dumps(message), headers)

    def metric(self, i, name):
        # each scrape from an address of its own: scrapes are not what the budgets measure
        self.scrapes += 1
        source = f"127.0.2.{1 + self.scrapes % 250}"
        status, _, body = self.request(self.ports[i], "GET", "/metrics", source=source,
                                       headers={"Authorization": f"Bearer {KEY1}"})
        if status != 200:
            return None
        for line in body.decode().splitlines():
            if line.startswith("mcp_" + name + " "):
                return float(line.split()[1])
        return None

    def wait_redis_up(self, instances, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if all(self.metric(i, "fleet_redis_up") == 1 for i in instances):
                return True
            time.sleep(0.2)
        return False

    def row(self, check, ok, figures):
        self.rows.append((check, ok, figures))
        print(f"fleet: {check}: {'ok' if ok else 'FAIL'}: {figures}", flush=True)

    # --- checks -----------------------------------------------------------------------------
    def burst(self, source, seconds, most=4000):
        """tools/list through the balancer from `source` for `seconds` (at most `most`
        requests); the times of the accepted ones, every status, and the time taken."""
        start, accepted, statuses = time.time(), [], []
        while time.time() - start < seconds and len(statuses) < most:
            status, _, _ = self.modern(self.balancer, "tools/list", {}, source=source)
            statuses.append(status)
            if status == 200:
                accepted.append(time.time() - start)
            time.sleep(0.001)
        return accepted, statuses, time.time() - start

    @staticmethod
    def worst_window(times):
        return max((sum(1 for u in times if t <= u < t + WINDOW) for t in times), default=0)

    def check_budget(self, name, source, seconds):
        accepted, statuses, took = self.burst(source, seconds)
        worst = self.worst_window(accepted)
        bad = sum(1 for s in statuses if s is None or s >= 500)
        ok = worst <= 1.1 * LIMIT and bad == 0 and len(accepted) >= LIMIT * 0.9
        self.row(name, ok, f"{len(statuses)} requests in {took:.1f} s, {len(accepted)} "
                 f"accepted, at most {worst} in any {WINDOW} s window (N = {LIMIT}, "
                 f"1.1 N = {int(1.1 * LIMIT)}; three separate budgets would allow "
                 f"{3 * LIMIT}), {bad} 5xx or errors")

    def initialize(self, port, key=KEY1):
        status, headers, _ = self.legacy(port, {
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "fleet", "version": "1"}}}, key)
        session = headers.get("mcp-session-id")
        if status != 200 or not session:
            return None
        self.legacy(port, {"jsonrpc": "2.0", "method": "notifications/initialized"}, key, session)
        return session

    def ping(self, port, session, key=KEY1):
        return self.legacy(port, {"jsonrpc": "2.0", "id": 2, "method": "ping"}, key, session)[0]

    def check_sessions(self):
        p = self.ports
        session = self.initialize(p[0])
        elsewhere = [self.ping(p[1], session), self.ping(p[2], session)] if session else []
        stranger = [self.ping(p[1], session, KEY2), self.ping(p[2], session, KEY2)] if session else []
        deleted = self.request(p[2], "DELETE", "/mcp", headers={
            "Authorization": f"Bearer {KEY1}", "Mcp-Session-Id": session or "-"})[0]
        after = [self.ping(port, session) for port in p] if session else []
        ok = (session is not None and elsewhere == [200, 200] and stranger == [404, 404]
              and deleted == 204 and after == [404, 404, 404])
        self.row("sessions", ok, f"minted on 1; on 2 and 3: {elsewhere}; another key: "
                 f"{stranger}; DELETE on 3: {deleted}; then on 1, 2, 3: {after}")

    def check_rounds(self):
        caps = {"elicitation": {}}
        tool = "test_input_required_result_multi_round"
        answers = [None, {"step1": {"action": "accept", "content": {"name": "fleet"}}},
                   {"step2": {"action": "accept", "content": {"color": "blue"}}}]
        state, kinds = None, []
        text = ""
        for i, responses in enumerate(answers):
            params = {"name": tool, "arguments": {}}
            if state:
                params["requestState"] = state
            if responses:
                params["inputResponses"] = responses
            status, _, body = self.modern(self.ports[i], "tools/call", params, caps=caps)
            result = json.loads(body or b"{}").get("result", {}) if status == 200 else {}
            kinds.append(result.get("resultType", status))
            state = result.get("requestState")
            text = "".join(c.get("text", "") for c in result.get("content", []))
        ok = kinds[:2] == ["input_required", "input_required"] and text == "both rounds complete"
        self.row("rounds", ok, f"round 1 on instance 1, 2 on 2, 3 on 3: {kinds}, "
                 f"last answer {text!r}")

    def load(self, seconds, results, stop, sources=250):
        """Steady requests through the balancer, each from the next of `sources` addresses
        (every one far under its budget), until `seconds` pass or `stop` is set."""
        start, n = time.time(), 0
        while time.time() - start < seconds and not stop.is_set() and n < 20000:
            source = f"127.0.1.{1 + n % sources}"
            status, _, _ = self.modern(self.balancer, "tools/list", {}, key=KEY2, source=source)
            results.append(status)
            n += 1
            time.sleep(0.01)

    def under_load(self, action, seconds=6.0, at=2.0):
        results, stop = [], threading.Event()
        workers = [threading.Thread(target=self.load, args=(seconds, results, stop))
                   for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(at)
        action()
        for w in workers:
            w.join(timeout=seconds + 30)
        stop.set()
        return results

    def check_outage(self):
        before = sum(self.metric(i, "fleet_fallback_decisions") or 0 for i in range(3))
        results = self.under_load(lambda: self.stop("redis", signal.SIGKILL))
        after = sum(self.metric(i, "fleet_fallback_decisions") or 0 for i in range(3))
        down = [self.metric(i, "fleet_redis_up") for i in range(3)]
        bad = sum(1 for s in results if s is None or s >= 500)
        seen = {s: results.count(s) for s in set(results)}
        ok = bad == 0 and after > before and down == [0, 0, 0] and len(results) > 0
        self.row("outage", ok, f"Redis killed (SIGKILL) 2 s into 6 s of load: {len(results)} "
                 f"requests, {bad} 5xx or connection errors, fallback decisions "
                 f"{int(before)} -> {int(after)}, fleet_redis_up {down}, statuses {seen}")

    def check_recovery(self):
        t0 = time.time()
        self.start_redis()
        up = self.wait_redis_up(range(3))
        took = time.time() - t0
        self.row("recovery", up, f"Redis restarted: every instance on shared budgets "
                 f"again after {took:.1f} s")
        self.check_budget("budget after recovery", "127.0.0.7", WINDOW + 2)

    def check_instance(self, i, sig, allowed, label):
        """Instance `i` stopped by `sig` under load: at most `allowed` requests unanswered or
        5xx (those in flight at a crash; a graceful stop allows none), and the session it
        minted lives on the others."""
        session = self.initialize(self.ports[i])
        results = self.under_load(lambda: self.stop(f"i{i}", sig))
        bad = sum(1 for s in results if s is None or s >= 500)
        others = [j for j in range(3) if f"i{j}" in self.procs]
        survives = [self.ping(self.ports[j], session) for j in others] if session else []
        ok = bad <= allowed and len(results) > 0 and survives and all(s == 200 for s in survives)
        self.row(label, ok, f"instance {i + 1} stopped ({sig.name}) 2 s into 6 s of load: "
                 f"{len(results)} requests, {bad} 5xx or unanswered (at most {allowed}); the "
                 f"session it minted, on the others: {survives}")

    def run(self):
        secret = os.path.join(self.work, "state-secret")
        with open(secret, "w") as f:
            f.write(KEY1 + "-shared-state-secret\n")
        os.chmod(secret, 0o600)
        self.start_redis()
        for i in range(3):
            self.start_instance(i)
        for port in self.ports:
            self.wait_port(port)
        self.start_balancer()
        time.sleep(1.0)   # the balancer's first health checks
        self.check_budget("budget", "127.0.0.5", WINDOW + 2)
        self.check_sessions()
        self.check_rounds()
        self.check_outage()
        self.check_recovery()
        # A planned stop drains; a crash may cost the requests in flight at that instant (one
        # per load worker at most), never an acknowledged one, nor the sessions it minted.
        self.check_instance(1, signal.SIGTERM, 0, "instance stopped")
        self.check_instance(2, signal.SIGKILL, 4, "instance crashed")

    def table(self):
        print()
        print("| check | result | measured |")
        print("|---|---|---|")
        for check, ok, figures in self.rows:
            print(f"| {check} | {'ok' if ok else 'FAIL'} | {figures} |")
        return all(ok for _, ok, _ in self.rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--work", required=True)
    fleet = Fleet(parser.parse_args())
    try:
        fleet.run()
    finally:
        fleet.stop_all()
    ok = fleet.table()
    print(f"fleet: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
