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
