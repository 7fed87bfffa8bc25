#!/usr/bin/env bash
# Fuzzes the real `lattice serve` (the demo model, a throwaway events database, one key with
# every scope) against its own /openapi.json with schemathesis: no 5xx, and every answer's
# status, content type and body as documented. A fixed seed and time budget, so a run is
# repeatable and bounded. Called by scripts/test; needs the release binary it builds.
#
#   scripts/schemathesis.sh                 # 120 s budget
#   LATTICE_FUZZ_SECONDS=600 scripts/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET="${CARGO_TARGET_DIR:-$HOME/.cache/lattice-target}"
BIN="${LATTICE_BIN:-$TARGET/release/lattice}"
VENV="$HOME/.venvs/lattice-schemathesis"
REQ=scripts/requirements-schemathesis.txt
SEED="${LATTICE_FUZZ_SEED:-20261205}"
BUDGET="${LATTICE_FUZZ_SECONDS:-120}"

if [ ! -x "$BIN" ]; then
    echo "scripts/schemathesis.sh: no lattice binary at $BIN (cargo build --release -p lattice)" >&2
    exit 1
fi
# The venv is (re)installed when its requirements file changes.
sum="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$sum" ] || [ ! -x "$VENV/bin/st" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r "$REQ"
    echo "$sum" > "$VENV/.requirements.sha256"
fi

tmp="$(mktemp -d)"
key="fuzz-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
hash="$(printf %s "$key" | sha256sum | cut -d' ' -f1)"
LATTICE_API_KEYS="fuzz:$hash:score+audience+events+admin" "$BIN" serve --model models/demo \
    --addr 127.0.0.1:0 --events-db "$tmp/events.db" >"$tmp/out" 2>"$tmp/log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
addr=""
for _ in $(seq 1 300); do
    addr="$(sed -n 's|.*http://\([0-9.:]*\).*|\1|p' "$tmp/out" | head -1)"
    [ -n "$addr" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "scripts/schemathesis.sh: the server did not start:" >&2
        cat "$tmp/log" >&2
        exit 1
    fi
    sleep 0.1
done
[ -n "$addr" ] || { echo "scripts/schemathesis.sh: no address from the server" >&2; exit 1; }

echo "schemathesis $(grep '^schemathesis==' "$REQ" | cut -d= -f3) against http://$addr (seed $SEED, $BUDGET s)"
# From the temporary directory: schemathesis keeps a cache (and reports) in its working
# directory, which must not land in the work tree.
cd "$tmp"
"$VENV/bin/st" run "http://$addr/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --seed "$SEED" --max-time "$BUDGET" --workers 1 --generation-database none \
    --header "Authorization: Bearer $key" --no-color "$@"
