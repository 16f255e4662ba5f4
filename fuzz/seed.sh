#!/usr/bin/env bash
# Builds the seed corpora from the test fixtures (idempotent): every fixture for `parse`
# and `check`, and bundles compiled from the valid ones for `bundle`.
# `fuzz/seed.sh [DIR]` writes DIR/TARGET/ for each target (default: fuzz/corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-fuzz/corpus}
for target in parse check bundle vm_differential fmt_idempotent fmt_meaning outreach_events; do
    mkdir -p "$corpus/$target"
done
cp tests/fixtures/parse/*.rule "$corpus"/parse/
cp tests/fixtures/check/*.rule tests/fixtures/compile/*.rule tests/fixtures/run/*.rule "$corpus"/check/
cp fuzz/regressions/*/* "$corpus"/check/ 2>/dev/null || true
for dir in fuzz/regressions/*/; do
    target=$(basename "$dir")
    [ -d "$corpus/$target" ] && cp "$dir"* "$corpus/$target/" 2>/dev/null || true
done
for f in tests/fixtures/*/*.rule examples/deck/*.rule; do
    # Fixtures of different stages share names; keep the stage in the corpus name.
    name="$(basename "$(dirname "$f")")_$(basename "$f")"
    cp "$f" "$corpus/fmt_idempotent/$name"
    cp "$f" "$corpus/fmt_meaning/$name"
done
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/ruledeck"
for f in tests/fixtures/compile/*.rule tests/fixtures/check/ok_*.rule examples/deck; do
    name=$(basename "$f" .rule)
    "$bin" build "$f" -o "$corpus/bundle/$name.rdb" 2>/dev/null || true
done
# Event logs for outreach_events (four bytes an event: unit, minute, id, field; 0xFF starts a
# raw line): in order, a duplicate id, out of order within and beyond the lateness, a raw line.
printf '\x00\x00\x01\x05\x00\x05\x02\x06\x00\x14\x03\x07\x00\x02\x04\x01\x01\x00\x05\x04\x00\x00\x01\x05' \
    > "$corpus/outreach_events/in_order_and_duplicate"
printf '\x01\x50\x01\x04\x01\x48\x02\x05\x01\x20\x03\x06\x01\x51\x04\x07\x02\x51\x05\x00' \
    > "$corpus/outreach_events/late_and_out_of_order"
printf '\xff{"event": "tap", "uid": "u0"}\n\x00\x01\x07\x04' > "$corpus/outreach_events/raw_line"
# Release store files for the bundle target, which reads its input as a manifest and a journal too.
store=$(mktemp -d)
RULEDECK_NOW=2026-12-01T10:00:00Z "$bin" release examples/deck --store "$store/s" >/dev/null 2>&1 || true
cp "$store/s/releases/0000000001.json" "$corpus"/bundle/manifest.json 2>/dev/null || true
cp "$store/s/journal.jsonl" "$corpus"/bundle/journal.jsonl 2>/dev/null || true
rm -rf "$store"
echo "seeded: $(ls "$corpus"/parse | wc -l) parse, $(ls "$corpus"/check | wc -l) check, $(ls "$corpus"/bundle | wc -l) bundle"
