#!/usr/bin/env python3
"""Feature-extraction throughput: Lattice (DataFusion) against DuckDB on the same aggregation.

Both engines run the *same SQL text* -- the per-customer aggregation that `lattice features`
runs, as printed by `lattice features --print-sql duckdb` -- over the same events.parquet,
materialised in memory (Lattice: collected Arrow batches; DuckDB: CREATE TEMP TABLE), with the
same number of threads. Timings on a shared machine drift, so the two engines alternate
(Lattice, DuckDB, DuckDB, Lattice, ...) and the script reports medians and the median of the
per-round ratios.

    pip install -r scripts/requirements-bench.txt
    cargo build --release -p lattice
    target/release/lattice generate --customers 1000000 --seed 42 --out /tmp/w1m
    python3 scripts/bench_features.py --data /tmp/w1m --rounds 7 --end-to-end

Lattice's timing is the aggregation query only (`lattice features --query-only`), not the
strict validation pass that reads every row first; DuckDB's is the query only, not connecting
or creating the view. With --end-to-end it also times the whole `lattice features` command
(validation, categories, aggregation, the 61-feature matrix and its Parquet file) beside DuckDB
running the category and aggregation queries and writing the aggregates to Parquet: a
reference, not a like-for-like comparison.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import duckdb
except ImportError:  # pragma: no cover - a message beats a traceback
    sys.exit("duckdb is not installed: pip install -r scripts/requirements-bench.txt")

MAX_ROUNDS = 50
TIMEOUT_S = 900  # one engine run; generous for a loaded 2-core machine

QUERY_ONLY = re.compile(
    r"aggregation query: (?P<rows>\d+) rows × (?P<cols>\d+) columns from (?P<events>\d+) events "
    r"in (?P<secs>[0-9.]+) s(?:, (?P<cpu>[0-9.]+) s CPU)?"
)
FULL = re.compile(
    r"(?P<rows>\d+) customers × (?P<feats>\d+) features from (?P<events>\d+) events in "
    r"(?P<secs>[0-9.]+) s \(validation pass (?P<open>[0-9.]+) s, categories (?P<cat>[0-9.]+) s, "
    r"profiles (?P<profiles>[0-9.]+) s, aggregation and features (?P<agg>[0-9.]+) s, "
    r"write (?P<write>[0-9.]+) s\)"
)
CATEGORIES_SQL = (
    "SELECT category, COUNT(*) AS n FROM events WHERE event_type = 'purchase' "
    "AND category IS NOT NULL AND epoch_us(ts) <= {as_of} GROUP BY category ORDER BY n DESC, category"
)


def default_lattice() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    root = Path(target) if target else Path(__file__).resolve().parent.parent / "target"
    return root / "release" / "lattice"


def run(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    if out.returncode != 0:
        sys.exit(f"{shlex.join(cmd)} failed ({out.returncode}):\n{out.stderr.strip()}")
    return out.stdout


def lattice_query(lattice: Path, data: Path, as_of: list[str]) -> dict:
    cmd = [str(lattice), "features", "--data", str(data), *as_of, "--query-only"]
    out = run(cmd)
    m = QUERY_ONLY.search(out)
    if not m:
        sys.exit(f"unexpected output from {shlex.join(cmd)}:\n{out}")
    return {
        "secs": float(m["secs"]),
        "cpu": float(m["cpu"]) if m["cpu"] else None,
        "rows": int(m["rows"]),
        "cols": int(m["cols"]),
        "events": int(m["events"]),
    }


def duckdb_connect(events: Path, threads: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()  # in memory: a fresh database every run
    con.execute(f"SET threads = {threads}")
    con.execute("SET enable_progress_bar = false")
    path = str(events).replace("'", "''")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{path}')")
    return con


def duckdb_query(events: Path, threads: int, sql: str) -> dict:
    con = duckdb_connect(events, threads)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        con.execute(f"CREATE TEMP TABLE aggregates AS {sql}")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows = con.execute("SELECT COUNT(*) FROM aggregates").fetchone()[0]
        cols = len(con.execute("SELECT * FROM aggregates LIMIT 0").description)
    finally:
        con.close()
    return {"secs": wall, "cpu": cpu, "rows": rows, "cols": cols}


def lattice_full(lattice: Path, data: Path, as_of: list[str], out: Path) -> dict:
    cmd = [str(lattice), "features", "--data", str(data), *as_of, "--out", str(out)]
    started = time.perf_counter()
    text = run(cmd)
    wall = time.perf_counter() - started
    m = FULL.search(text)
    if not m:
        sys.exit(f"unexpected output from {shlex.join(cmd)}:\n{text}")
    return {"secs": wall, "agg": float(m["agg"]), "features": int(m["feats"])}


def duckdb_full(events: Path, threads: int, sql: str, as_of: int, out: Path) -> dict:
    started = time.perf_counter()
    con = duckdb_connect(events, threads)
    try:
        con.execute(CATEGORIES_SQL.format(as_of=as_of)).fetchall()
        target = str(out).replace("'", "''")
        con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet)")
    finally:
        con.close()
    return {"secs": time.perf_counter() - started}


def summary(xs: list[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="data directory (events.parquet)")
    ap.add_argument("--lattice", type=Path, default=default_lattice(), help="lattice binary")
    ap.add_argument("--rounds", type=int, default=7, help=f"rounds, 1..{MAX_ROUNDS}")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="DuckDB threads")
    ap.add_argument("--as-of", help="as passed to lattice features (default: the last event)")
    ap.add_argument("--end-to-end", action="store_true", help="also time whole runs (with write)")
    args = ap.parse_args()

    if not 1 <= args.rounds <= MAX_ROUNDS:
        sys.exit(f"--rounds must be 1..{MAX_ROUNDS}")
    events = args.data / "events.parquet"
    if not events.is_file():
        sys.exit(f"{events}: not found (lattice generate --customers 1000000 --out {args.data})")
    if not args.lattice.is_file():
        sys.exit(f"{args.lattice}: not found (cargo build --release -p lattice, or --lattice)")
    cores = os.cpu_count() or 1
    if args.threads != cores:
        print(
            f"note: DataFusion uses all {cores} cores; DuckDB is set to {args.threads} threads",
            file=sys.stderr,
        )
    as_of = ["--as-of", args.as_of] if args.as_of else []

    sql = run([str(args.lattice), "features", "--data", str(args.data), *as_of,
               "--print-sql", "duckdb"]).strip().rstrip(";")
    as_of_us = int(re.search(r"epoch_us\(ts\) <= (\d+)", sql).group(1))
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)

    lat: list[dict] = []
    duck: list[dict] = []
    for r in range(args.rounds):
        # Alternate which engine goes first (L D, D L, ...) so drift hits both alike.
        order = ("lattice", "duckdb") if r % 2 == 0 else ("duckdb", "lattice")
        for engine in order:
            if engine == "lattice":
                lat.append(lattice_query(args.lattice, args.data, as_of))
            else:
                duck.append(duckdb_query(events, args.threads, sql))
        print(
            f"round {r + 1}/{args.rounds}: lattice {lat[-1]['secs']:.2f} s, "
            f"duckdb {duck[-1]['secs']:.2f} s",
            file=sys.stderr,
        )
    if lat[0]["rows"] != duck[0]["rows"] or lat[0]["cols"] != duck[0]["cols"]:
        sys.exit(
            f"result shapes differ: lattice {lat[0]['rows']}×{lat[0]['cols']}, "
            f"duckdb {duck[0]['rows']}×{duck[0]['cols']}"
        )

    full_lat: list[dict] = []
    full_duck: list[dict] = []
    if args.end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                order = ("lattice", "duckdb") if r % 2 == 0 else ("duckdb", "lattice")
                for engine in order:
                    if engine == "lattice":
                        full_lat.append(
                            lattice_full(args.lattice, args.data, as_of, Path(tmp) / "f.parquet")
                        )
                    else:
                        full_duck.append(
                            duckdb_full(events, args.threads, sql, as_of_us, Path(tmp) / "d.parquet")
                        )
                print(
                    f"end-to-end round {r + 1}/{args.rounds}: lattice {full_lat[-1]['secs']:.2f} s, "
                    f"duckdb {full_duck[-1]['secs']:.2f} s",
                    file=sys.stderr,
                )
    load_after = os.getloadavg()

    n_events = lat[0]["events"]
    l_med, l_min, l_max = summary([x["secs"] for x in lat])
    d_med, d_min, d_max = summary([x["secs"] for x in duck])
    ratios = [a["secs"] / b["secs"] for a, b in zip(lat, duck)]
    ratio_med = statistics.median(ratios)
    cpu_l = [x["cpu"] for x in lat if x["cpu"] is not None]
    cpu_d = [x["cpu"] for x in duck]

    def cpu(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f}" if xs else "–"

    print(f"### Aggregation only: {args.rounds} interleaved rounds, {started:%Y-%m-%d %H:%M} UTC\n")
    print(
        f"{n_events:,} events, {lat[0]['rows']:,} customers × {lat[0]['cols']} aggregates, "
        f"{args.threads} threads each.\n"
    )
    print("| engine | median wall | min – max | median CPU | events/s (median) |")
    print("|---|---|---|---|---|")
    print(
        f"| Lattice (DataFusion) | **{l_med:.2f} s** | {l_min:.2f} – {l_max:.2f} s | {cpu(cpu_l)} s "
        f"| {n_events / l_med / 1e6:.2f} M |"
    )
    print(
        f"| DuckDB {duckdb.__version__} | **{d_med:.2f} s** | {d_min:.2f} – {d_max:.2f} s | {cpu(cpu_d)} s "
        f"| {n_events / d_med / 1e6:.2f} M |"
    )
    print()
    print(
        f"Lattice / DuckDB: **{ratio_med:.2f}×** (median of per-round ratios; "
        f"range {min(ratios):.2f}–{max(ratios):.2f}; ratio of medians {l_med / d_med:.2f}×"
        + (
            f"; CPU {statistics.median(cpu_l) / statistics.median(cpu_d):.2f}×"
            if cpu_l and cpu_d
            else ""
        )
        + f"). Target ≤ 1.5×: {'met' if ratio_med <= 1.5 else 'MISSED'}."
    )
    if full_lat:
        fl, fl_min, fl_max = summary([x["secs"] for x in full_lat])
        fd, fd_min, fd_max = summary([x["secs"] for x in full_duck])
        fa = statistics.median([x["agg"] for x in full_lat])
        print(f"\n### End to end, with the write ({args.rounds} interleaved rounds)\n")
        print("| run | median wall | min – max | events/s (median) |")
        print("|---|---|---|---|")
        print(
            f"| `lattice features --out` (validation, categories, aggregation + "
            f"{full_lat[0]['features']} features "
            f"[median {fa:.2f} s], Parquet) | {fl:.2f} s | {fl_min:.2f} – {fl_max:.2f} s "
            f"| {n_events / fl / 1e6:.2f} M |"
        )
        print(
            f"| DuckDB: categories, aggregation, `COPY … TO` Parquet | {fd:.2f} s "
            f"| {fd_min:.2f} – {fd_max:.2f} s | {n_events / fd / 1e6:.2f} M |"
        )
    print("\nCommands:\n")
    print("```sh")
    print(shlex.join(["python3", *sys.argv]))
    for flags in (["--query-only"], ["--print-sql", "duckdb"]):
        print(shlex.join([str(args.lattice), "features", "--data", str(args.data), *as_of, *flags]))
    print("```\n")
    print(
        f"DuckDB: `SET threads = {args.threads}; CREATE VIEW events AS SELECT * FROM "
        f"read_parquet('{events}'); CREATE TEMP TABLE aggregates AS <printed query>`."
    )
    print(
        f"Machine: {platform.system()} {platform.machine()}, {cores} cores; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after."
    )


if __name__ == "__main__":
    main()
