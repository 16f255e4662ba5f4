#!/usr/bin/env bash
# Runs fuzz targets: `fuzz/run.sh RUNS [TARGET…]` (default: all), each for RUNS inputs from a
# fixed seed, so a run is reproducible: the same commit explores the same inputs on any
# machine, and a CI failure is a failure on a developer's machine too. For open-ended
# exploration run cargo fuzz directly with a time budget (fuzz/README.md).
# Stable Rust: libFuzzer's coverage instrumentation works without a sanitizer, so targets
# are built with `--sanitizer none` (AddressSanitizer needs a nightly compiler). Rust's own
# bounds and overflow checks (debug assertions are on) still turn memory errors into crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: fuzz/run.sh RUNS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(parse check bundle vm_differential fmt_idempotent fmt_meaning outreach_events)
# A ceiling only, far above what RUNS takes here, so a much slower machine still finishes.
max_seconds=${FUZZ_MAX_SECONDS:-300}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# A fresh corpus from the fixtures alone, so inputs kept by earlier runs on this machine
# (fuzz/corpus/) never change what is explored.
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
bash fuzz/seed.sh "$seeds"
for target in "${targets[@]}"; do
    echo "== fuzz $target: $runs inputs from seed 1"
    log=$(mktemp)
    # libFuzzer exits 0 when the runs are done without a crash; a crash, a build failure
    # or a timeout is non-zero and fails the run.
    if ! (cd fuzz && cargo fuzz run --sanitizer none "$target" "$seeds/$target" -- \
        -dict=ruledeck.dict -seed=1 -runs="$runs" -max_total_time="$max_seconds" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) > "$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $target failed (crash inputs, if any, are in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    grep -E "^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss" "$log" || true
    rm -f "$log"
done
