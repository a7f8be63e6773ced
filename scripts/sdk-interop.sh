#!/usr/bin/env bash
# Drives servers with the official MCP SDK clients, each authenticating with a Bearer key:
# - the real binary with the Python SDK client (mcp 2.x), in its default mode (server/discover,
#   2026-07-28) and in legacy mode (initialize): list tools, read a file, see a sandbox refusal,
#   list and read a resource; and the same with an access token from an identity provider of
#   its own (scripts/oauth_issuer.py) instead of a key;
# - the fixtures server (examples/everything) with the Python SDK client in both modes and the
#   TypeScript SDK client (@modelcontextprotocol/sdk, Streamable HTTP): a tool call with
#   progress, a resource, a prompt, an elicitation.
# Installs the SDKs into a cache outside the repository. Skips (and says so) a language whose
# runtime is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v python3 >/dev/null 2>&1; then
    echo "sdk-interop: SKIPPED: python3 is not installed"
    exit 0
fi

cache="${SMCP_CACHE:-$HOME/.cache/secure-mcp-server}"
# shellcheck source=lib.sh
. scripts/lib.sh
venv=$(sdk_venv)

cargo build --quiet --bin secure-mcp-server --examples
bin=target/debug/secure-mcp-server

mkdir "$work/sdkroot"
printf 'hello from the sandbox\n' > "$work/sdkroot/greeting.txt"
key=$("$bin" --generate-key | head -n 1)

MCP_LOG=debug "$bin" --api-key "$key" --allow-dir "$work/sdkroot" --bind 127.0.0.1:0 \
    > "$work/server.log" 2>&1 &
pids+=($!)
addr=$(listening "$work/server.log") || { echo "sdk-interop: FAILED: the server did not start"; exit 1; }

passed=0 failed=0
check() { # description command...
    local what=$1
    shift
    if "$@"; then passed=$((passed + 1)); else echo "sdk-interop: FAILED: $what"; failed=$((failed + 1)); fi
}
for mode in auto legacy; do
    check "python $mode, real server" "$venv/bin/python" scripts/sdk_client.py "http://$addr/mcp" "$key" "$mode" \
        sdkroot/greeting.txt $'hello from the sandbox\n'
done
check "the key stays out of the server log" bash -c '! grep -q -- "$1" "$2"' _ "$key" "$work/server.log"

# The real binary with an identity provider of our own (scripts/oauth_issuer.py): the Python
# SDK client calls with the provider's access token instead of a key.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/python" scripts/oauth_issuer.py "http://127.0.0.1:$port/mcp" "$work/token" > "$work/issuer.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^issuer ' "$work/issuer.log" && break; sleep 0.1; done
issuer=$(sed -n 's/^issuer //p' "$work/issuer.log")
MCP_LOG=debug "$bin" --api-key "$key" --allow-dir "$work/sdkroot" --bind "127.0.0.1:$port" \
    --oauth-issuer "$issuer" --public-url "http://127.0.0.1:$port/mcp" --oauth-scopes mcp:tools \
    > "$work/oauth-server.log" 2>&1 &
pids+=($!)
listening "$work/oauth-server.log" > /dev/null || { echo "sdk-interop: FAILED: the server with an issuer did not start"; exit 1; }
token=$(cat "$work/token")
for mode in auto legacy; do
    check "python $mode, access token from an identity provider" "$venv/bin/python" scripts/sdk_client.py \
        "http://127.0.0.1:$port/mcp" "$token" "$mode" sdkroot/greeting.txt $'hello from the sandbox\n'
done
check "the token stays out of the server log" bash -c '! grep -q -- "$1" "$2"' _ "$token" "$work/oauth-server.log"

target/debug/examples/everything --api-key "$key" --bind 127.0.0.1:0 > "$work/fixtures.log" 2>&1 &
pids+=($!)
fixtures=$(listening "$work/fixtures.log") || { echo "sdk-interop: FAILED: the fixtures server did not start"; exit 1; }
for mode in auto legacy; do
    check "python $mode, fixtures" "$venv/bin/python" scripts/sdk_fixtures.py "http://$fixtures/mcp" "$key" "$mode"
done
if command -v npm >/dev/null 2>&1; then
    ts="$cache/ts-sdk"
    if [ ! -f "$ts/node_modules/@modelcontextprotocol/sdk/package.json" ]; then
        mkdir -p "$ts"
        npm install --silent --no-audit --no-fund --prefix "$ts" @modelcontextprotocol/sdk@1.32.2 >/dev/null
    fi
    check "typescript, fixtures" env TS_SDK_DIR="$ts" node scripts/ts_client.mjs "http://$fixtures/mcp" "$key"
else
    echo "sdk-interop: TypeScript SKIPPED: npm is not installed"
fi
echo "sdk-interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
