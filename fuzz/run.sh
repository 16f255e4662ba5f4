#!/usr/bin/env bash
# Runs fuzz targets for a time budget each: `fuzz/run.sh SECONDS [TARGET…]` (default: all).
# Stable Rust: libFuzzer's coverage instrumentation works without a sanitizer, so targets
# are built with `--sanitizer none` (AddressSanitizer needs a nightly compiler). Rust's own
# bounds and overflow checks (debug assertions are on) still turn memory errors into crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(parse check bundle vm_differential fmt_idempotent fmt_meaning)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
bash fuzz/seed.sh
for target in "${targets[@]}"; do
    echo "== fuzz $target for ${seconds}s"
    log=$(mktemp)
    # libFuzzer exits 0 when the time budget runs out without a crash; a crash, a build
    # failure or a timeout is non-zero and fails the run.
    if ! (cd fuzz && cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -dict=ruledeck.dict -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) > "$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $target failed (crash inputs, if any, are in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    grep -E "^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss" "$log" || true
    rm -f "$log"
done
