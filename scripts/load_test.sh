#!/usr/bin/env bash
# Load test of next-best-actions on loopback, beside a minimal axum handler returning a
# constant JSON (the ceiling), in the same run. Server and load generator are each pinned to
# one core. Needs `wrk` (apt-get install wrk) and a release build:
#   cargo build --release -p lattice -p lattice-serve --bin lattice --example constant_json --features lattice-serve/load-test
#   scripts/load_test.sh [DURATION_SECONDS] [CONNECTIONS]
# Prints one line per target: requests/s, p50, p99. LATTICE_BIN=path/to/lattice measures
# another build of the server (a copy of an earlier one, say) against the same ceiling.
#
# wrk is a closed loop: each connection sends its next request when the last answer arrives,
# so latency there is mostly queueing (connections x cost per request). LOAD_RATE=N offers N
# requests/s instead, whatever the server does (an open loop, with `oha`: cargo install oha
# --locked), and measures each latency from when its request was due (no coordinated
# omission), which is what a CRM calling the server sees at that rate.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-$HOME/.cache/lattice-target}/release
DUR=${1:-10}
CONN=${2:-64}
KEY=load-test-key
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
export TOKIO_WORKER_THREADS=1 LATTICE_LOG=warn

LATTICE_API_KEYS="load:$HASH:score" taskset -c 0 "${LATTICE_BIN:-$T/lattice}" serve --model models/demo --addr 127.0.0.1:18080 >/dev/null &
P1=$!
taskset -c 0 "$T/examples/constant_json" 127.0.0.1:18081 >/dev/null &
P2=$!
OUT=$(mktemp)
trap 'kill $P1 $P2 2>/dev/null || true; rm -f "$OUT"' EXIT
for port in 18080 18081; do
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
  done
done

# A customer with ranked actions in the demo model, so the measured path does the full work.
ID=${LOAD_CUSTOMER:-c0966}

run() {
  local name=$1 url=$2
  if [ -n "${LOAD_RATE:-}" ]; then
    taskset -c 1 oha -z "${DUR}s" -c "$CONN" -q "$LOAD_RATE" --latency-correction --no-tui \
      --output-format json -H "Authorization: Bearer $KEY" "$url" >"$OUT"
    python3 - "$name" "$OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
p, s = d["latencyPercentiles"], d["summary"]
bad = sum(v for k, v in d["statusCodeDistribution"].items() if not k.startswith("2"))
ms = lambda q: f"{p[q] * 1e3:6.2f}ms"
print(f"{sys.argv[1]:<22} {s['requestsPerSec']:10.0f} req/s  p50 {ms('p50')}  p99 {ms('p99')}"
      f"  p99.9 {ms('p99.9')}  non-2xx {bad}  errors {d['errorDistribution'] or 0}")
PY
    return
  fi
  taskset -c 1 wrk -t1 -c"$CONN" -d"${DUR}s" --latency -H "Authorization: Bearer $KEY" "$url" \
    | awk -v n="$name" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
        /Non-2xx/ {bad=$4} END {printf "%-22s %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n", n, rps, p50, p99, (bad==""?0:bad)}'
}
# Interleaved twice: this machine's timings drift.
for _ in 1 2; do
  run constant_json_1.9kB "http://127.0.0.1:18081/v1/customers/$ID/next-best-actions"
  run next_best_actions "http://127.0.0.1:18080/v1/customers/$ID/next-best-actions?limit=5"
  run constant_json_70B "http://127.0.0.1:18081/tiny"
  run scores "http://127.0.0.1:18080/v1/customers/$ID/scores"
done
