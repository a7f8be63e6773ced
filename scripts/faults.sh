#!/usr/bin/env bash
# Fault injection on the release binary: the audit disk fills and frees, the keys file breaks
# during a SIGHUP, the allowed directory moves or goes, a SIGHUP storm and a SIGTERM under load,
# clients that stop reading, descriptor exhaustion. Each scenario says PASS, FAIL or what it
# skipped and why; exits non-zero on a failure. Loopback only; every loop is bounded.
#   bash scripts/faults.sh [SCENARIO NAME...]
# SMCP_PROFILE=debug runs them on the debug build (CI, on what the tests built).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${SMCP_PROFILE:-release}
cargo build $([ "$profile" = release ] && echo --release) --quiet --bin secure-mcp-server
python3 scripts/faults.py "target/$profile/secure-mcp-server" "$@"
