#!/usr/bin/env bash
# Instructions per request under callgrind: a figure that does not move with the machine's
# load, unlike requests per second. Runs the release binary (full stack: the audit in the
# diagnostic log, its default place; to a file; off) and the two bare axum baselines (the
# idiomatic one answering a result of its own, and one answering with the same result bytes),
# sends the same tools/list request N times on one connection, and subtracts a run with no
# requests (start-up, shutdown).
#   bash bench/instructions.sh [N]      (default 3000; needs valgrind)
# Also measured: the server with 100 keys (99 in a keys file), without and with a policy entry
# for each (--policy; the calling key with a tool list and a request budget), so the cost of
# per-key policy is a figure; and a caller with an access token (ES256, from
# examples/token_issuer.rs on loopback) instead of a key, so the cost of a token check is one.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3000}
command -v valgrind >/dev/null || { echo "instructions: valgrind is not installed"; exit 1; }
cargo build --release --quiet --bin secure-mcp-server --example baseline --example token_issuer \
    --example everything
# shellcheck source=../scripts/lib.sh
. scripts/lib.sh
key=$(target/release/secure-mcp-server --generate-key | head -n 1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The baseline answers with the server's own tools/list result (as in bench/run.sh).
mkdir -p "$work/data"
target/release/secure-mcp-server --api-key "$key" --bind "127.0.0.1:$port" --allow-dir "$work/data" > "$work/first.log" 2>&1 &
first=$!
pids+=("$first")
tools_list_result "$(listening "$work/first.log")" "$key" > "$work/tools_list.json"
kill "$first"; wait "$first" 2>/dev/null || true

measure() { # requests command... → total instructions (BENCH_CREDENTIAL: another than $key; BENCH_KIND: call)
    local requests=$1
    shift
    local credential=${BENCH_CREDENTIAL:-$key}
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$@" > "$work/log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 200); do grep -q "listening on" "$work/log" && break; sleep 0.1; done
    if [ "$requests" -gt 0 ]; then python3 bench/pipeline.py 127.0.0.1 "$port" "$requests" "${BENCH_KIND:-list}" "$credential" > /dev/null; fi
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    callgrind_annotate "$work/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}'
}

server=(target/release/secure-mcp-server --api-key "$key" --bind "127.0.0.1:$port" --allow-dir "$work/data" --rate-limit 1000000000 --audit-log "$work/audit.log")
baseline=(target/release/examples/baseline "127.0.0.1:$port" "$work/tools_list.json")
idiomatic=(target/release/examples/baseline "127.0.0.1:$port")
logged=(target/release/secure-mcp-server --api-key "$key" --bind "127.0.0.1:$port" --allow-dir "$work/data" --rate-limit 1000000000)
noaudit=(target/release/secure-mcp-server --api-key "$key" --bind "127.0.0.1:$port" --allow-dir "$work/data" --rate-limit 1000000000)
s0=$(measure 0 "${server[@]}"); s1=$(measure "$n" "${server[@]}")
a0=$(MCP_LOG="info,audit=off" measure 0 "${noaudit[@]}"); a1=$(MCP_LOG="info,audit=off" measure "$n" "${noaudit[@]}")
b0=$(measure 0 "${baseline[@]}"); b1=$(measure "$n" "${baseline[@]}")
i0=$(measure 0 "${idiomatic[@]}"); i1=$(measure "$n" "${idiomatic[@]}")
l0=$(measure 0 "${logged[@]}"); l1=$(measure "$n" "${logged[@]}")
# A 2026 tools/call of a trivial tool: the fixtures server (examples/everything), audit in the log.
fixtures=(target/release/examples/everything --api-key "$key" --bind "127.0.0.1:$port" --rate-limit 1000000000)
c0=$(measure 0 "${fixtures[@]}"); c1=$(BENCH_KIND=call measure "$n" "${fixtures[@]}")
# A policy of 100 keys: 99 in a keys file, and the calling key (cli-1), each with its own entry.
: > "$work/keys"
{
    echo '[defaults]'
    echo 'rate_limit = "600/60s"'
    for i in $(seq 1 99); do
        echo "$(target/release/secure-mcp-server --generate-key | head -n 1)" > "$work/k"
        python3 - "$work/k" "key-$i" >> "$work/keys" <<'PY'
import hashlib, sys
print(f"{sys.argv[2]}:{hashlib.sha256(open(sys.argv[1]).read().strip().encode()).hexdigest()}")
PY
        printf '[keys.key-%d]\ntools = ["read_file", "list_*"]\nrate_limit = "100/60s"\n' "$i"
    done
    printf '[keys.cli-1]\ntools = ["*"]\nrate_limit = "1000000000/60s"\n'
    printf '[keys.cli-1.tool_limits]\nsearch_files = "10/60s"\n'
} > "$work/policy.toml"
keyed=("${server[@]}" --keys-file "$work/keys")
policy=("${keyed[@]}" --policy "$work/policy.toml")
k0=$(measure 0 "${keyed[@]}"); k1=$(measure "$n" "${keyed[@]}")
p0=$(measure 0 "${policy[@]}"); p1=$(measure "$n" "${policy[@]}")
# The same server accepting an issuer's tokens, called with a token (its first request fetches
# the issuer's keys, once).
target/release/examples/token_issuer "http://127.0.0.1:$port/mcp" "$work/token" > "$work/issuer.log" 2>&1 &
pids+=($!)
issuer=$(listening "$work/issuer.log")
token=$(cat "$work/token")
tokened=("${server[@]}" --oauth-issuer "http://$issuer" --public-url "http://127.0.0.1:$port/mcp")
t0=$(measure 0 "${tokened[@]}"); t1=$(BENCH_CREDENTIAL=$token measure "$n" "${tokened[@]}")
awk -v s=$(( (s1 - s0) / n )) -v t=$(( (t1 - t0) / n )) 'BEGIN {
    printf "with an access token (ES256) instead of the key: %d instructions per tools/list (%+.0f%%, %d for the token check)\n", t, (t - s) / s * 100, t - s }'
awk -v s=$(( (s1 - s0) / n )) -v a=$(( (a1 - a0) / n )) -v b=$(( (b1 - b0) / n )) -v k=$(( (k1 - k0) / n )) -v p=$(( (p1 - p0) / n )) -v i=$(( (i1 - i0) / n )) -v l=$(( (l1 - l0) / n )) -v c=$(( (c1 - c0) / n )) 'BEGIN {
    printf "instructions per tools/list request: secure-mcp-server %d with the audit in the log (default), %d with the audit file, %d audit off (the log costs %.1f%%, the file %.1f%%); idiomatic bare axum baseline %d (baseline / server = %.2f); bare axum sending the same result bytes %d (%.2f)\n", l, s, a, (l - a) / l * 100, (s - a) / s * 100, i, i / l, b, b / l
    printf "instructions per 2026 tools/call of a trivial tool (fixtures server, audit in the log): %d\n", c
    printf "with 100 keys (99 in a keys file): %d; with a policy entry for each (the caller restricted, with a request budget): %d (%+.1f%% over the same keys without a policy)\n", k, p, (p - k) / k * 100 }'
