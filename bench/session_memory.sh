#!/usr/bin/env bash
# The memory of idle 2025-era sessions, on the release binary: RSS before and after opening
# SESSIONS sessions (default 10000) with a minimal initialize, and after opening PADDED sessions
# (default 200) whose initialize carries ~1 MiB of nested padding in capabilities and clientInfo.
# Prints bytes per session for both. Loopback only; every loop is bounded by its count.
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-10000}
padded=${2:-200}
cargo build --release --quiet --bin secure-mcp-server
# shellcheck source=../scripts/lib.sh
. scripts/lib.sh
key=$(target/release/secure-mcp-server --generate-key | head -n 1)
target/release/secure-mcp-server --api-key "$key" --bind 127.0.0.1:0 --rate-limit 100000000 \
    --max-sessions 1000000 --max-sessions-per-key 1000000 --max-body 1100000 \
    > "$work/server.log" 2>&1 &
pid=$!
pids+=("$pid")
addr=$(listening "$work/server.log")
python3 - "$addr" "$key" "$pid" "$sessions" "$padded" <<'PY'
import http.client, sys
addr, key, pid, sessions, padded = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=30)

def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def initialize(body):
    conn.request("POST", "/mcp", body=body, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status

small = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{},"roots":{"listChanged":true}},"clientInfo":{"name":"bench","version":"1"}}}'
pad = ",".join(["[]"] * 116000)
big = ('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
       f'"clientInfo":{{"name":"x","version":"1","pad":[{pad}]}},'
       f'"capabilities":{{"sampling":{{"pad":[{pad}]}},"experimental":{{"pad":[{pad}]}}}}}}}}').encode()
for _ in range(100):
    initialize(small)
before = rss()
for _ in range(sessions):
    initialize(small)
after = rss()
print(f"{sessions} idle sessions: RSS {before/2**20:.1f} -> {after/2**20:.1f} MiB, "
      f"{(after-before)/sessions:.0f} bytes per session")
before = rss()
for _ in range(padded):
    initialize(big)
after = rss()
print(f"{padded} sessions opened with {len(big)/2**20:.2f} MiB initialize bodies: RSS "
      f"{before/2**20:.1f} -> {after/2**20:.1f} MiB (+{(after-before)/2**20:.1f} MiB), "
      f"{(after-before)/padded:.0f} bytes per session")
PY
