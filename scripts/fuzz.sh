#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for SECONDS (default 60) with its seed
# corpus and dictionary; exits non-zero on the first crash (its input is kept under
# fuzz/artifacts/TARGET/). Prints executions, coverage and corpus size per target.
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# FUZZ_DEV=1 builds the targets unoptimised (faster to build, slower to run: CI's short runs).
# Installs cargo-fuzz if missing. Uses the nightly toolchain if there is one, else the stable
# one with RUSTC_BOOTSTRAP=1. Runs without a sanitizer (the crate forbids unsafe code; the
# targets assert properties, not only the absence of panics), with debug assertions on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
fuzz=(cargo fuzz)
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
fi
opts=(--sanitizer none --debug-assertions)
if [ "${FUZZ_DEV:-0}" = 1 ]; then
    opts+=(--dev)
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <("${fuzz[@]}" list)
fi
echo "fuzz: building ${#targets[@]} targets"
"${fuzz[@]}" build "${opts[@]}" >/dev/null

dict_for() {
    case "$1" in
        envelope|router|request_state) echo fuzz/dicts/json.dict ;;
        *) echo fuzz/dicts/headers.dict ;;
    esac
}

failed=0
printf '%-22s %12s %8s %8s %8s\n' target executions exec/s cov corpus
for t in "${targets[@]}"; do
    # the checked-in seeds stay small: new inputs go to a run corpus beside them
    run="fuzz/corpus-run/$t"
    mkdir -p "$run" "fuzz/corpus/$t"
    log=$(mktemp)
    if "${fuzz[@]}" run "${opts[@]}" "$t" "$run" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -dict="$(dict_for "$t")" -max_len=8192 \
        -print_final_stats=1 > "$log" 2>&1; then
        status=ok
    else
        status=CRASH
        failed=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    corpus=$(find "$run" -type f | wc -l)
    printf '%-22s %12s %8s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$corpus" "$status"
    if [ "$status" = CRASH ]; then
        grep -E 'panicked|SUMMARY|Test unit written|assert' "$log" | head -n 20
    fi
    rm -f "$log"
done
if [ "$failed" -ne 0 ]; then
    echo "fuzz: a target crashed; its input is under fuzz/artifacts/"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash (${seconds}s each)"
