#!/usr/bin/env bash
# Builds the seed corpora from the test fixtures (idempotent): every fixture for `parse`
# and `check`, and bundles compiled from the valid ones for `bundle`.
set -euo pipefail
cd "$(dirname "$0")/.."
for target in parse check bundle vm_differential fmt_idempotent fmt_meaning; do
    mkdir -p "fuzz/corpus/$target"
done
cp tests/fixtures/parse/*.rule fuzz/corpus/parse/
cp tests/fixtures/check/*.rule tests/fixtures/compile/*.rule tests/fixtures/run/*.rule fuzz/corpus/check/
cp fuzz/regressions/*/* fuzz/corpus/check/ 2>/dev/null || true
for f in tests/fixtures/*/*.rule examples/deck/*.rule; do
    # Fixtures of different stages share names; keep the stage in the corpus name.
    name="$(basename "$(dirname "$f")")_$(basename "$f")"
    cp "$f" "fuzz/corpus/fmt_idempotent/$name"
    cp "$f" "fuzz/corpus/fmt_meaning/$name"
done
cargo build --release --quiet
for f in tests/fixtures/compile/*.rule tests/fixtures/check/ok_*.rule examples/deck; do
    name=$(basename "$f" .rule)
    ./target/release/ruledeck build "$f" -o "fuzz/corpus/bundle/$name.rdb" 2>/dev/null || true
done
# Release store files for the bundle target, which reads its input as a manifest and a journal too.
store=$(mktemp -d)
RULEDECK_NOW=2026-12-01T10:00:00Z ./target/release/ruledeck release examples/deck --store "$store/s" >/dev/null 2>&1 || true
cp "$store/s/releases/0000000001.json" fuzz/corpus/bundle/manifest.json 2>/dev/null || true
cp "$store/s/journal.jsonl" fuzz/corpus/bundle/journal.jsonl 2>/dev/null || true
rm -rf "$store"
echo "seeded: $(ls fuzz/corpus/parse | wc -l) parse, $(ls fuzz/corpus/check | wc -l) check, $(ls fuzz/corpus/bundle | wc -l) bundle"
