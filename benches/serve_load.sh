#!/usr/bin/env bash
# Load benchmark of `ruledeck serve` with a real HTTP load generator (wrk, keep-alive).
#
# Runs, each DURATION long against the release build on the example deck:
#   1. files:  --tags examples/deck/tags.json;   POST /v1/decide, then /v1/decide/batch (BATCH requests)
#   2. redis:  the deck's crm, risk, profile and orders providers from a redis-server of its own
#              (the rest from the file); the same two calls
#   3. swap:   --store, while releases are published in a loop (rollbacks between two releases);
#              POST /v1/decide; zero non-2xx answers and zero socket errors are required
# Prints wrk's report for each (requests/s, latency percentiles) and a summary line per run.
# Installs wrk and redis-server with apt-get when missing. Not run by CI (too noisy on a shared
# machine); CI only checks `bash -n benches/serve_load.sh`. docs/performance.md has the numbers.
#
# Usage: benches/serve_load.sh            (DURATION=10s THREADS=2 CONNECTIONS=32 BATCH=100)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
BATCH=${BATCH:-100}

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo build --release --locked --bin ruledeck
bin="${CARGO_TARGET_DIR:-target}/release/ruledeck"
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- request bodies: the example deck's inputs, cycled (wrk's Lua picks one per request) ---
python3 - "$tmp" "$BATCH" <<'EOF'
import json, sys
tmp, batch = sys.argv[1], int(sys.argv[2])
inputs = [json.loads(l) for l in open("examples/deck/inputs.jsonl") if l.strip()]
single = [json.dumps({"scene": "payment", "instance": "installments", "input": i}) for i in inputs]
reqs = [{"scene": "payment", "instance": "installments", "input": inputs[n % len(inputs)]} for n in range(batch)]
def lua_string(s):
    return "[==[" + s + "]==]"
with open(f"{tmp}/decide.lua", "w") as f:
    f.write("wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n")
    f.write("local bodies = {" + ",".join(lua_string(b) for b in single) + "}\nlocal n = 0\n")
    f.write("request = function()\n  n = n % #bodies + 1\n  return wrk.format(nil, '/v1/decide', nil, bodies[n])\nend\n")
with open(f"{tmp}/batch.lua", "w") as f:
    f.write("wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n")
    f.write("wrk.body = " + lua_string(json.dumps({"requests": reqs})) + "\n")
    f.write("wrk.path = '/v1/decide/batch'\n")
EOF

# Starts `ruledeck serve ARGS…` on a free port; sets $addr.
start_server() {
    local out="$tmp/serve-$RANDOM.out"
    "$bin" serve "$@" --listen 127.0.0.1:0 >"$out" 2>"$out.err" &
    pids+=($!)
    for _ in $(seq 300); do grep -q '^listening on ' "$out" && break; sleep 0.1; done
    addr=$(sed -n 's/^listening on //p' "$out")
    [ -n "$addr" ] || { echo "ruledeck serve did not start:" >&2; cat "$out.err" >&2; exit 1; }
}

# Runs wrk with a Lua script; fails on any non-2xx answer or socket error.
# $1: label, $2: script, $3: decisions per request.
load() {
    local label=$1 script=$2 per=$3 report="$tmp/wrk.txt"
    # Warm the tag cache and the connections first.
    wrk -t1 -c4 -d2s -s "$script" "http://$addr" >/dev/null
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "http://$addr" | tee "$report"
    if grep -qE 'Non-2xx|Socket errors' "$report"; then
        echo "FAIL: $label had errors (see above)" >&2
        exit 1
    fi
    local rps p50 p99
    rps=$(awk '/^Requests\/sec/ {print $2}' "$report")
    p50=$(awk '$1 == "50%" {print $2}' "$report")
    p99=$(awk '$1 == "99%" {print $2}' "$report")
    printf 'SUMMARY %-28s %10.0f req/s %12.0f decisions/s  p50 %s  p99 %s\n' \
        "$label" "$rps" "$(echo "$rps * $per" | bc -l)" "$p50" "$p99" | tee -a "$tmp/summary.txt"
}

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 1. file providers"
start_server examples/deck --tags examples/deck/tags.json
load "files /v1/decide" "$tmp/decide.lua" 1
load "files /v1/decide/batch x$BATCH" "$tmp/batch.lua" "$BATCH"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== 2. redis providers"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/redis"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp/redis" >/dev/null &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
# Every entity's tags as one hash per key, values as JSON.
python3 - <<'EOF' | redis-cli -p "$port" >/dev/null
import json
data = json.load(open("examples/deck/tags.json"))
for entity, keys in data.items():
    for key, fields in keys.items():
        args = []
        for field, value in fields.items():
            args += [field, json.dumps(value)]
        if args:
            print(" ".join(["HSET", json.dumps(f"tags:{key}")] + [json.dumps(a) for a in args]))
EOF
cat >"$tmp/providers.toml" <<EOF
[providers.crm]
kind = "redis"
url = "redis://127.0.0.1:$port/"
key = "tags:{key}"
timeout_ms = 100
[providers.risk]
kind = "redis"
url = "redis://127.0.0.1:$port/"
key = "tags:{key}"
timeout_ms = 100
[providers.profile]
kind = "redis"
url = "redis://127.0.0.1:$port/"
key = "tags:{key}"
timeout_ms = 100
[providers.orders]
kind = "redis"
url = "redis://127.0.0.1:$port/"
key = "tags:{key}"
timeout_ms = 100
EOF
start_server examples/deck --tags examples/deck/tags.json --providers "$tmp/providers.toml"
load "redis /v1/decide" "$tmp/decide.lua" 1
load "redis /v1/decide/batch x$BATCH" "$tmp/batch.lua" "$BATCH"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== 3. releases swapping during the load"
store="$tmp/store"
cp -r examples/deck "$tmp/deck2"
sed -i 's/"3 interest-free"/"3 interest-free!"/' "$tmp/deck2/payment.rule"
RULEDECK_NOW=2026-12-01T10:00:00Z "$bin" release examples/deck --store "$store" --tags examples/deck/tags.json --note one >/dev/null
RULEDECK_NOW=2026-12-01T10:00:00Z "$bin" release "$tmp/deck2" --store "$store" --tags examples/deck/tags.json --note two >/dev/null
start_server --store "$store" --tags examples/deck/tags.json
(
    while true; do
        "$bin" rollback 1 --store "$store" --note swap >/dev/null 2>&1
        sleep 0.2
        "$bin" rollback 2 --store "$store" --note swap >/dev/null 2>&1
        sleep 0.2
    done
) &
pids+=($!)
load "store /v1/decide, swapping" "$tmp/decide.lua" 1
releases=$("$bin" releases --store "$store" --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "releases published: $releases"

echo "== summary"
cat "$tmp/summary.txt"
