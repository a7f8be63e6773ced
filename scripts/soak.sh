#!/usr/bin/env bash
# Soak: the release binary under a bounded, mixed workload from thousands of loopback source
# addresses for SECONDS (default 600), sampled every 10 s; fails on any 5xx, any connection
# error on a well-formed request, RSS growth over 1% a minute after the warm-up, descriptors
# not back to the baseline after the load, or an answered request missing from (or doubled in)
# the audit file. Loopback only (127.0.0.0/8); every loop is bounded in count and time.
#   bash scripts/soak.sh [SECONDS]
# SMCP_PROFILE=debug soaks the debug build instead (CI's short run, on what the tests built).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
profile=${SMCP_PROFILE:-release}
cargo build $([ "$profile" = release ] && echo --release) --quiet --bin secure-mcp-server
# shellcheck source=lib.sh
. scripts/lib.sh
bin=target/$profile/secure-mcp-server
key=$("$bin" --generate-key | head -n 1)
mkdir -p "$work/data/sub"
head -c 3072 /dev/urandom | base64 -w 0 > "$work/data/file4k.txt"
echo "# notes" > "$work/data/sub/notes.md"
"$bin" --api-key "$key" --bind 127.0.0.1:0 --allow-dir "$work/data" \
    --audit-log "$work/audit.log" --max-body 65536 --session-idle-secs 20 \
    --rate-limit 50 --rate-window 10 --max-sessions-per-key 100000 \
    --max-connections-per-ip 16 > "$work/server.log" 2>&1 &
pid=$!
pids+=("$pid")
addr=$(listening "$work/server.log")
python3 scripts/soak.py --addr "$addr" --key "$key" --pid "$pid" --seconds "$seconds" \
    --audit "$work/audit.log"
wait "$pid" && echo "soak: the server exited 0 on SIGTERM" || { echo "soak: FAIL: the server exited $? on SIGTERM"; exit 1; }
