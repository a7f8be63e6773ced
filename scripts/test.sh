#!/usr/bin/env bash
# The tests: `cargo test`, once the fleet tests' redis-server is on the machine (installed from
# the distribution's packages if it is missing). Arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
need_packages redis-server:redis-server
cargo test "$@"
