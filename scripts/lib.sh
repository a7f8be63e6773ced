# Sourced by the project's scripts: a work directory that is removed on exit together with
# every process whose PID is added to `pids`, and the wait for a server's listening line.

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# listening LOG → prints the host:port of the first "listening on http(s)://…" line (10 s at most)
listening() {
    local addr=""
    for _ in $(seq 1 100); do
        addr=$(sed -n 's#.*listening on https\{0,1\}://\([0-9.:]*\).*#\1#p' "$1" | head -n 1)
        [ -n "$addr" ] && { echo "$addr"; return 0; }
        sleep 0.1
    done
    echo "nothing is listening; its log:" >&2
    cat "$1" >&2
    return 1
}

# tools_list_result HOST:PORT KEY → prints the `result` of a 2026-07-28 tools/list, compact
tools_list_result() {
    local meta='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
    curl -sf "http://$1/mcp" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
        -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/list' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{$meta}}" |
        python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["result"], separators=(",", ":"), ensure_ascii=False))'
}

# need_packages COMMAND:PACKAGE ... → installs, from the distribution, each package whose command
# is missing (as root, or through sudo); fails with what to install when it cannot.
need_packages() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    if command -v apt-get >/dev/null 2>&1 &&
        { $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
            { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; }; }; then
        return 0
    fi
    echo "needs: ${missing[*]} (install them from your distribution's packages)" >&2
    return 1
}

# sdk_venv → prints the virtualenv that holds the official MCP Python SDK (pinned), made in the
# cache outside the repository if it is missing.
sdk_venv() {
    local cache="${SMCP_CACHE:-$HOME/.cache/secure-mcp-server}"
    local venv="$cache/sdk-venv"
    if ! "$venv/bin/python" -c 'import mcp.client' >/dev/null 2>&1; then
        mkdir -p "$cache"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'mcp==2.3.0' >&2
    fi
    echo "$venv"
}
