"""When each dbt node ran, per thread, from a run_results.json that benchmarks/run.py kept.

    .venv/bin/python benchmarks/timeline.py benchmarks/out/run_results_dbt_build__full.json

`dbt build` runs a model's tests before its children, so a slow test delays the whole chain
below it while the other thread may sit idle; this shows such gaps and the nodes around them.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def executions(path: Path) -> list[tuple[float, float, str, str]]:
    """(start, end, node, thread) of every executed node, seconds from the first start."""
    rows = []
    for result in json.loads(path.read_text())["results"]:
        timing = [t for t in result["timing"] if t["name"] == "execute" and t.get("started_at")]
        if not timing:
            continue
        start = datetime.fromisoformat(timing[0]["started_at"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing[0]["completed_at"].replace("Z", "+00:00"))
        rows.append((start, end, result["unique_id"], result.get("thread_id") or "?"))
    if not rows:
        return []
    origin = min(r[0] for r in rows)
    return sorted(
        ((s - origin).total_seconds(), (e - origin).total_seconds(), node, thread)
        for s, e, node, thread in rows
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_results", type=Path)
    ap.add_argument("--min-seconds", type=float, default=2.0, help="hide nodes shorter than this")
    args = ap.parse_args()
    if not args.run_results.exists():
        raise SystemExit(f"{args.run_results} not found: run benchmarks/run.py first")
    rows = executions(args.run_results)
    print(f"{'start':>8} {'end':>8} {'secs':>7}  thread      node")
    for start, end, node, thread in rows:
        if end - start >= args.min_seconds:
            print(f"{start:8.1f} {end:8.1f} {end - start:7.1f}  {thread[:10]:<10}  {node}")
    by_thread: dict[str, float] = {}
    for start, end, _, thread in rows:
        by_thread[thread] = by_thread.get(thread, 0.0) + end - start
    span = max(r[1] for r in rows) if rows else 0.0
    for thread, busy in sorted(by_thread.items()):
        print(f"{thread}: busy {busy:.1f} s of {span:.1f} s ({busy / span:.0%})" if span else thread)


if __name__ == "__main__":
    main()
