#!/usr/bin/env bash
# Drives the real server with the official MCP Python SDK client (mcp 2.x), in its default
# mode (server/discover, 2026-07-28) and in legacy mode (initialize), authenticating with a
# Bearer key: list tools, read a file, see a sandbox refusal, list and read a resource.
# Installs the SDK into a cache outside the repository. Skips (and says so) without python3.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v python3 >/dev/null 2>&1; then
    echo "sdk-interop: SKIPPED: python3 is not installed"
    exit 0
fi

cache="${SMCP_CACHE:-$HOME/.cache/secure-mcp-server}"
venv="$cache/sdk-venv"
if ! "$venv/bin/python" -c 'import mcp.client' >/dev/null 2>&1; then
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'mcp==2.3.0'
fi

cargo build --quiet --bin secure-mcp-server
bin=target/debug/secure-mcp-server

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/sdkroot"
printf 'hello from the sandbox\n' > "$work/sdkroot/greeting.txt"
key=$("$bin" --generate-key | head -n 1)

MCP_LOG=debug "$bin" --api-key "$key" --allow-dir "$work/sdkroot" --bind 127.0.0.1:0 \
    > "$work/server.log" 2>&1 &
server_pid=$!

addr=""
for _ in $(seq 1 100); do
    addr=$(sed -n 's#.*listening on http://\([0-9.:]*\)/mcp.*#\1#p' "$work/server.log" | head -n 1)
    [ -n "$addr" ] && break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "sdk-interop: FAILED: the server did not start"; cat "$work/server.log"; exit 1
fi

status=0
for mode in auto legacy; do
    if ! "$venv/bin/python" scripts/sdk_client.py "http://$addr/mcp" "$key" "$mode" \
        sdkroot/greeting.txt $'hello from the sandbox\n'; then
        echo "sdk-interop: FAILED in $mode mode"
        status=1
    fi
done
if grep -q -- "$key" "$work/server.log"; then
    echo "sdk-interop: FAILED: the key appeared in the server log"
    status=1
fi
[ "$status" -eq 0 ] && echo "sdk-interop: 2 passed, 0 failed"
exit "$status"
