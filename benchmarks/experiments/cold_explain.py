"""Profile one compiled select on a benchmark database with the page cache dropped first.

    # compile a model against the database (e.g. a copy of OUT/after_full_<N>.duckdb with the
    # day landed and the model's parents built), then:
    sudo .venv/bin/python benchmarks/experiments/cold_explain.py DB.duckdb target/compiled/.../model.sql

An incremental day reads most stored rows from disk: timings taken warm (a query run twice)
ranked the ways to read stored events differently from the day itself, so the numbers in
BENCHMARKS.md since session 16 are cold. Dropping the page cache needs root; the query runs in
a fresh process, read-only, and its operators are listed by time summed over threads.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(db: Path, sql_file: Path, profile: Path) -> None:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    con.execute("set TimeZone='UTC'")
    con.execute("set enable_progress_bar=false")
    con.execute("pragma enable_profiling='json'")
    con.execute(f"pragma profiling_output='{profile}'")
    started = time.perf_counter()
    rows = con.execute(f"select count(*) from ({sql_file.read_text()})").fetchall()[0][0]
    con.close()
    print(f"{sql_file.name}: {time.perf_counter() - started:.2f} s, {rows:,} rows")


def operators(node: dict) -> list[tuple[float, str, int, str]]:
    extra = node.get("extra_info") or {}
    found = [
        (
            node.get("operator_timing", 0.0),
            node.get("operator_type") or "",
            node.get("operator_cardinality") or 0,
            str(extra.get("Table") or extra.get("Conditions") or extra.get("Projections") or "")[:100],
        )
    ]
    for child in node.get("children", []):
        found.extend(operators(child))
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("database", type=Path)
    ap.add_argument("sql_file", type=Path, help="a compiled select (dbt's target/compiled/...)")
    ap.add_argument("--top", type=int, default=12, help="operators to list")
    ap.add_argument("--warm", action="store_true", help="keep the page cache")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--profile", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_once(args.database, args.sql_file, args.profile)
        return
    if not args.warm:
        subprocess.run("sync; echo 3 > /proc/sys/vm/drop_caches", shell=True, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile.json"
        cmd = [
            sys.executable,
            __file__,
            str(args.database),
            str(args.sql_file),
            "--child",
            "--profile",
            str(profile),
        ]
        subprocess.run(cmd, check=True)
        tree = json.loads(profile.read_text())
    print(f"latency {tree.get('latency', 0):.2f} s, cpu {tree.get('cpu_time', 0):.2f} s")
    for timing, kind, rows, detail in sorted(operators(tree), key=lambda o: -o[0])[: args.top]:
        print(f"  {timing:7.2f} s  {kind:<16} {rows:>12,}  {detail}")


if __name__ == "__main__":
    main()
