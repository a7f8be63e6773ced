#!/usr/bin/env bash
# A fleet on loopback: Redis, three instances (the fixtures server, whose tools include a
# multi-round one) with --redis-url, and HAProxy in front; the checks of scripts/fleet.py and
# a table of what they measured. Installs redis-server and haproxy from the distribution's
# packages if they are missing. First checks the deployment examples of contrib/ against the
# server (scripts/check_contrib.py). Stops everything it started, by PID. About 40 s.
#   bash scripts/fleet.sh
# SMCP_PROFILE=debug runs the fleet on the debug build (CI, on what the tests built).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. scripts/lib.sh
need_packages redis-server:redis-server haproxy:haproxy
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
python3 scripts/check_contrib.py
profile=${SMCP_PROFILE:-release}
cargo build $([ "$profile" = release ] && echo --release) --quiet --example everything
python3 scripts/fleet.py --binary "target/$profile/examples/everything" --work "$work"
