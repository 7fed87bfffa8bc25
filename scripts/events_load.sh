#!/usr/bin/env bash
# Sustained event ingestion: wrk posts batches of 500 events (no event_id, so every batch is
# stored) to `lattice serve` on loopback for DURATION seconds, then the database is counted to
# check that every acknowledged event is there. Needs `wrk` (apt-get install wrk), python3 and
# a release build: `cargo build --release -p lattice`.
#   scripts/events_load.sh [DURATION_SECONDS] [CONNECTIONS]
# Prints batches/s, events/s, p50/p99 per batch, and acknowledged vs stored events.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-$HOME/.cache/lattice-target}/release
DUR=${1:-10}
CONN=${2:-4}
BATCH=500
KEY=events-load-key
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

# One batch: purchases, views, opens, contacts and support tickets for demo customers, now.
python3 - "$WORK/batch.json" "$BATCH" <<'PY'
import json, random, sys, datetime
random.seed(7)
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
kinds = ["purchase", "view", "email_open", "contact", "cart", "app_open", "support"]
events = []
for i in range(int(sys.argv[2])):
    k = random.choice(kinds)
    e = {"customer_id": f"c{random.randint(1, 5000):04d}", "ts": now, "event_type": k}
    if k == "purchase":
        e.update(amount=round(random.uniform(10, 200), 2), category="outerwear", order_id=f"load-{i}")
    elif k in ("view", "cart"):
        e["category"] = "denim"
    elif k == "contact":
        e.update(channel="email", action_id="newsletter")
    elif k == "support":
        e["sentiment"] = 0.2
    events.append(e)
open(sys.argv[1], "w").write(json.dumps(events))
PY
cat > "$WORK/post.lua" <<LUA
local f = io.open("$WORK/batch.json", "r")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA

DB="$WORK/events.db"
LATTICE_LOG=warn LATTICE_API_KEYS="load:$HASH:events" \
  "$T/lattice" serve --model models/demo --addr 127.0.0.1:18090 --events-db "$DB" >/dev/null &
PID=$!
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/18090) 2>/dev/null && break
  sleep 0.1
done

OUT=$(taskset -c 1 wrk -t1 -c"$CONN" -d"${DUR}s" --latency -s "$WORK/post.lua" http://127.0.0.1:18090/v1/events)
kill "$PID"
wait "$PID" 2>/dev/null || true
echo "$OUT" | awk -v b=$BATCH '
  /requests in/ {n=$1}
  /Requests\/sec/ {rps=$2}
  /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
  /Non-2xx/ {bad=$4}
  END {printf "batches/s %s  events/s %.0f  p50 %s  p99 %s  non-2xx %s  acknowledged %d\n",
       rps, rps*b, p50, p99, (bad==""?0:bad), (n-(bad==""?0:bad))*b}'
python3 - "$DB" <<'PY'
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM events").fetchone()[0]
print(f"stored events {n}")
PY
