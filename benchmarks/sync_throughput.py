"""Activation engine benchmarks (measurements, not timed tests), for BENCHMARKS.md.

    .venv/bin/python benchmarks/sync_throughput.py unlimited   # attribute updates/s, no rate limit
    .venv/bin/python benchmarks/sync_throughput.py limited     # share of HubSpot's limit over 60 s
    .venv/bin/python benchmarks/sync_throughput.py overhead    # tenacity + limiter cost per request
    .venv/bin/python benchmarks/sync_throughput.py latency     # batches in flight vs platform latency
    .venv/bin/python benchmarks/sync_throughput.py ack         # the ledger's state write per batch

What is measured is the engine from plan tables to acknowledged ledger: the sync's real plan
(SyncPlanner over a generated, dbt-built warehouse) is replicated into a larger plan with fresh
keys, then the engine's send loop reads it batch by batch, the destination module encodes and
sends each batch over loopback HTTP, and every batch is acknowledged in the ledger. Planning
time is reported apart. The fake platform runs in its own process (`serve`), so it does not
compete with the engine for the interpreter lock, only for the 2 cores.

The warehouse (2,000 generated customers, built as of 2026-11-20) is built once into
benchmarks/out/sync/ and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out" / "sync"
END = date(2026, 11, 20)
RAW, OPS = "raw_bench", "ops_bench"
KEY = "bench-key-not-a-secret"
sys.path.insert(0, str(REPO / "tests"))  # the loopback fakes


# -- the fake platform, in its own process ---------------------------------------------------


def serve(kind: str, limited: bool, latency: float = 0.0) -> None:
    """Prints the fake's URL, serves until stdin closes, then prints what it observed."""
    from fakes.hubspot import FakeHubSpot
    from fakes.segment import FakeSegment

    fake = FakeSegment(KEY) if kind == "segment" else FakeHubSpot(KEY)
    if not limited:
        fake.windows = ()
    with fake:
        # Python's server writes headers and body separately; without TCP_NODELAY each reply
        # waits ~40 ms for a delayed ACK, a latency of the fake, not of any platform
        fake._server.RequestHandlerClass.disable_nagle_algorithm = True
        if latency:
            fake.slow_next(10**7, latency)
        print(fake.url, flush=True)
        sys.stdin.read()
        arrivals = sorted(r.arrived for r in fake.requests)
        window = fake.windows[0] if fake.windows else None
        stats = {
            "requests": len(fake.requests),
            "arrivals": [t - arrivals[0] for t in arrivals] if arrivals else [],
            "throttled": fake.throttled,
            "limit_violations": fake.limit_violations,
            "window": window,
            "peak_in_window": fake.peak(window[1]) if window else None,
            "bytes": sum(len(r.body) for r in fake.requests),
        }
    print(json.dumps(stats), flush=True)


@contextmanager
def fake_process(kind: str, limited: bool, latency: float = 0.0):
    proc = subprocess.Popen(
        [sys.executable, __file__, "serve", kind, "--latency", str(latency)]
        + (["--limited"] if limited else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    stats: dict = {}
    try:
        yield url, stats
    finally:
        out, _ = proc.communicate(timeout=120)
        stats.update(json.loads(out.strip().splitlines()[-1]))


# -- the warehouse ---------------------------------------------------------------------------


def bench_env(where: Path) -> dict[str, str]:
    return {
        "PHASEGATE_TARGET": "duckdb",
        "PHASEGATE_DUCKDB_PATH": str(where / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(OUT / "target"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def ensure_warehouse() -> Path:
    db = OUT / "warehouse" / "warehouse.duckdb"
    if db.exists():
        return db
    from phasegate import api
    from phasegate.config import PhasegateConfig
    from phasegate.generator import GeneratorConfig, generate

    data = OUT / "data"
    generate(GeneratorConfig(customers=2000, days=240, seed=7, out=data, end_date=END))
    os.environ.update(bench_env(db.parent))
    cfg = PhasegateConfig(project_dir=str(REPO), source_schema=RAW, ops_schema=OPS)
    api.load_sources(cfg, data)
    api.build(cfg, END)
    return db


# -- one engine run --------------------------------------------------------------------------


class Timers:
    """Wall time spent inside wrapped functions, summed over threads (so sums may exceed the
    run's wall time when batches overlap)."""

    def __init__(self):
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def wrap(self, owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        def timed(*args, **kw):
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                with self._lock:
                    self.total[label] += time.perf_counter() - t
                    self.calls[label] += 1

        setattr(owner, attr, timed)


def engine_run(
    db: Path,
    dest: dict,
    records: int,
    batch_size: int,
    concurrency: int,
    identifiers: list[str],
    timers: Timers | None = None,
) -> dict:
    """Plans the sync, replicates the attribute plan to `records` rows with fresh keys (and
    fresh, still valid, emails), then runs the engine's send loop over it."""
    import phasegate.sync as engine
    from phasegate.config import PhasegateConfig, SyncConfig
    from phasegate.destinations import build_destination
    from phasegate.destinations.http import HttpClient
    from phasegate.ledger import Ledger
    from phasegate.planner import SyncPlanner
    from phasegate.warehouse import Warehouse, connect

    work = Path(tempfile.mkdtemp(prefix="sync_bench_", dir=OUT))
    shutil.copy(db, work / db.name)  # the name stays: dbt's views refer to the database by it
    os.environ.update(bench_env(work))
    os.environ["BENCH_KEY"] = KEY
    sync = SyncConfig(
        name="bench",
        destination={**dest, "max_concurrency": concurrency},
        fields=["orders_lifetime", "days_since_last_order"],
        identifiers=identifiers,
        batch_size=batch_size,
        send_events=False,
    )
    cfg = PhasegateConfig(project_dir=str(REPO), source_schema=RAW, ops_schema=OPS, syncs=[sync])
    wh = connect(REPO, None)
    try:
        ledger = Ledger(wh, cfg.ops_schema)
        ledger.ensure()
        planner = SyncPlanner(wh, ledger, sync, False)
        t = time.perf_counter()
        upserts, _, _ = planner.build(END)
        plan_s = time.perf_counter() - t
        cols = [r[0] for r in wh.query(f"select column_name from (describe {planner.attr_plan})")]
        copies = -(-records // upserts)
        replace = [
            "row_number() over (order by r.i, p.seq) as seq",
            "md5(p.record_id || '|' || r.i) as record_id",
            "p.record_key || '~' || r.i as record_key",
        ]
        if "email" in cols:
            replace.append(
                "case when p.email is null then null else 'b' || r.i || '.' || p.email end as email"
            )
        wh.execute(
            f"create or replace table {planner.attr_plan} as "
            f"select * from (select p.* replace ({', '.join(replace)}) "
            f"from {planner.attr_plan} as p cross join range({copies}) as r(i) where p.op = 'upsert') "
            f"where seq <= {records} order by seq"  # stored in seq order, as the planner does
        )
        wh.commit()
        ((n,),) = wh.query(f"select count(*) from {planner.attr_plan}")
        summary = engine.SyncSummary(sync=sync.name, run_id="bench_run", upserts=n)
        destination = build_destination(sync.destination)
        destination.check()
        if timers:
            timers.wrap(engine, "_acknowledge", "ack (ledger transaction)")
            timers.wrap(engine, "_records", "rows -> Record objects")
            timers.wrap(Warehouse, "query_with_columns", "read batch from plan")
            timers.wrap(destination, "write_batch", "write_batch (encode + HTTP)")
            timers.wrap(HttpClient, "send", "HttpClient.send (limiter + retries + HTTP)")
            import httpx

            timers.wrap(httpx.Client, "request", "httpx request/response")
        t, cpu = time.perf_counter(), _cpu_seconds()
        engine._send_batches(
            wh,
            ledger,
            destination,
            sync.name,
            summary.run_id,
            engine._plan_batches(
                wh, planner, sync, summary, False, min(batch_size, destination.capabilities.max_batch_records)
            ),
            concurrency,
            summary,
            lambda k: None,
        )
        send_s, cpu_s = time.perf_counter() - t, _cpu_seconds() - cpu
        destination.close()
        ((acked,),) = wh.query(
            f"select count(*) from {ledger.table('sync_state')} where run_id = 'bench_run'"
        )
    finally:
        wh.close()
        shutil.rmtree(work, ignore_errors=True)
    assert acked == summary.sent, (acked, summary.sent)
    return {
        "records": n,
        "sent": summary.sent,
        "rejected": summary.rejected,
        "plan_s": plan_s,
        "plan_rows": upserts,
        "send_s": send_s,
        "cpu_s": cpu_s,
        "per_s": summary.sent / send_s,
    }


def _cpu_seconds() -> float:
    """CPU time of this process, all threads: what the engine itself spent, whatever else runs
    on the machine (a loaded machine stretches wall time, much less this)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the benchmarks --------------------------------------------------------------------------


def segment_dest(url: str) -> dict:
    # a window far above any rate reached: the limiter runs (its cost is measured) but never waits
    return {
        "type": "segment",
        "base_url": url,
        "write_key_env": "BENCH_KEY",
        "rate_limit": [{"requests": 1_000_000, "seconds": 1}],
    }


def unlimited(args) -> None:
    db = ensure_warehouse()
    print(f"# attribute updates/s to a Segment fake with no rate limit ({args.records:,} records)")
    print(
        "| identifiers | batch | concurrency | sent | rejected | send s | updates/s | "
        "engine CPU µs/record | fake requests |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for identifiers in (["email"], []):
        for concurrency in args.concurrency:
            with fake_process("segment", limited=False) as (url, stats):
                r = engine_run(db, segment_dest(url), args.records, 2500, concurrency, identifiers)
            label = ", ".join(identifiers) or "none"
            print(
                f"| {label} | 2500 | {concurrency} | {r['sent']:,} | {r['rejected']:,} | "
                f"{r['send_s']:.2f} | {r['per_s']:,.0f} | {r['cpu_s'] / r['records'] * 1e6:.1f} | "
                f"{stats['requests']} |",
                flush=True,
            )
    print(f"\nplanning the real {r['plan_rows']:,}-row plan took {r['plan_s']:.2f} s (not in the rates)")
    # where the time goes, for one configuration
    timers = Timers()
    with fake_process("segment", limited=False) as (url, stats):
        r = engine_run(db, segment_dest(url), args.records, 2500, args.concurrency[-1], ["email"], timers)
    print(
        f"\n# where the time goes: email, concurrency {args.concurrency[-1]}, "
        f"{r['sent']:,} sent in {r['send_s']:.2f} s ({r['per_s']:,.0f}/s, with timers)"
    )
    print("| component | calls | seconds (summed over threads) | µs per record |")
    print("|---|---:|---:|---:|")
    for label, total in sorted(timers.total.items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {timers.calls[label]} | {total:.2f} | {total / r['records'] * 1e6:.1f} |")
    encode = codec_costs(db)
    print("\n# per-record CPU of the Segment destination's encoding, single thread")
    for label, us in encode.items():
        print(f"- {label}: {us:.1f} µs")


def latency(args) -> None:
    """What batches in flight buy against a platform that takes its time to answer."""
    db = ensure_warehouse()
    print(
        f"# attribute updates/s, each request answered after {args.seconds * 1000:.0f} ms "
        f"({args.records:,} records, batches of 500, email identifiers)"
    )
    print("| concurrency | send s | updates/s | fake requests |")
    print("|---:|---:|---:|---:|")
    for concurrency in args.concurrency:
        with fake_process("segment", limited=False, latency=args.seconds) as (url, stats):
            r = engine_run(db, segment_dest(url), args.records, 500, concurrency, ["email"])
        print(f"| {concurrency} | {r['send_s']:.2f} | {r['per_s']:,.0f} | {stats['requests']} |", flush=True)


def ack(args) -> None:
    """The ledger's per-batch state write on DuckDB: delete + insert (before) against one
    insert ... on conflict do update (now), for new customers and for customers already there."""
    import duckdb

    state = (
        "create table st (sync_name text, record_key text, fingerprint text, run_id text, "
        "delivered_at timestamp, primary key (sync_name, record_key))"
    )
    plan = (
        "create table plan as select i as seq, 'upsert' as op, 'c' || i as record_key, "
        "md5('f' || i) as fingerprint from range(1, ? + 1) r(i)"
    )
    rows = (
        "select 's', record_key, fingerprint, ?, now() from plan where op = 'upsert' and seq > ? and seq <= ?"
    )
    statements = {
        "delete + insert": [
            "delete from st where sync_name = 's' and record_key in "
            "(select record_key from plan where seq > ? and seq <= ?)",
            "insert into st " + rows,
        ],
        "insert ... on conflict do update": [
            "insert into st " + rows + " on conflict (sync_name, record_key) do update set "
            "fingerprint = excluded.fingerprint, run_id = excluded.run_id, "
            "delivered_at = excluded.delivered_at"
        ],
    }
    n, size = args.customers, 2500
    print(f"# acknowledging batches of {size:,} into a {n:,}-customer sync_state (DuckDB file)")
    print("| statement | new customers, ms/batch | customers already in the state, ms/batch |")
    print("|---|---:|---:|")
    for label, sqls in statements.items():
        with tempfile.TemporaryDirectory(dir=OUT) as tmp:
            con = duckdb.connect(str(Path(tmp) / "ack.duckdb"))
            con.execute(state)
            con.execute(plan, [n])
            per_pass = []
            for run in ("r1", "r2"):
                t = time.perf_counter()
                for start in range(0, n, size):
                    con.execute("begin")
                    for sql in sqls:
                        params = (
                            [start, start + size] if sql.startswith("delete") else [run, start, start + size]
                        )
                        con.execute(sql, params)
                    con.execute("commit")
                per_pass.append((time.perf_counter() - t) / (n / size) * 1000)
            con.close()
        print(f"| {label} | {per_pass[0]:.1f} | {per_pass[1]:.1f} |", flush=True)


def codec_costs(db: Path) -> dict[str, float]:
    """Per-record costs of the pieces the Segment destination runs for each record."""
    from email_validator import validate_email

    from phasegate.destinations.base import Record
    from phasegate.destinations.http import encode_json
    from phasegate.destinations.identity import contact_of, normalize_email

    recs = [
        Record(
            f"id{i}",
            "upsert",
            f"c{i}",
            {"lifecycle_phase": "active", "orders_lifetime": i, "email": f"person{i}@example.com"},
        )
        for i in range(20_000)
    ]

    def per(fn) -> float:
        t = time.perf_counter()
        for rec in recs:
            fn(rec)
        return (time.perf_counter() - t) / len(recs) * 1e6

    return {
        "email-validator itself": per(
            lambda r: validate_email(r.payload["email"], check_deliverability=False).normalized.lower()
        ),
        "normalize_email (plain ASCII: the fast path)": per(lambda r: normalize_email(r.payload["email"])),
        "contact_of (email only)": per(lambda r: contact_of(r.payload, "US")),
        "one JSON encoding of a message": per(lambda r: encode_json({"userId": r.key, "traits": r.payload})),
    }


def limited(args) -> None:
    """HubSpot's documented limit (100 requests per 10 s on Free/Starter, the destination's
    default) enforced by the fake with 429s; the engine runs until its plan is done."""
    db = ensure_warehouse()
    dest = lambda url: {"type": "hubspot", "base_url": url, "access_token_env": "BENCH_KEY"}  # noqa: E731
    with fake_process("hubspot", limited=True) as (url, stats):
        r = engine_run(db, dest(url), args.records, 1000, 2, ["email"])
    limit, seconds = stats["window"]
    arrivals = stats["arrivals"]
    span = args.seconds
    in_span = sum(1 for t in arrivals if t < span)
    allowed = limit * span / seconds
    print(f"# share of HubSpot's limit ({limit} requests / {seconds:g} s) sustained")
    print(f"- requests in the first {span} s: {in_span} of {allowed:.0f} allowed -> {in_span / allowed:.1%}")
    whole = arrivals[-1] if arrivals else 0
    print(
        f"- whole run: {stats['requests']} requests in {whole:.1f} s "
        f"({stats['requests'] / (whole or 1) * seconds:.1f} per {seconds:g} s); "
        f"{r['sent']:,} contacts upserted, {r['rejected']:,} rejected locally"
    )
    print(f"- peak in any {seconds:g} s window at the fake: {stats['peak_in_window']} (limit {limit})")
    print(f"- 429s: {stats['throttled']}; limit violations: {stats['limit_violations']}")
    starts = [t for t in arrivals if t + span <= arrivals[-1]]
    if starts:
        worst = min(sum(1 for u in arrivals if s <= u < s + span) for s in starts)
        print(f"- worst {span} s window starting at any request: {worst} ({worst / allowed:.1%})")
    gaps = [(a, b - a) for a, b in zip(arrivals, arrivals[1:], strict=False) if b - a > 1.0]
    print("- idle gaps over 1 s (at s: length s): " + ", ".join(f"{a:.1f}: {g:.1f}" for a, g in gaps))


def overhead(args) -> None:
    """The retry (tenacity) and limiter layer per request, against raw httpx, same fake."""
    import httpx

    from phasegate.destinations.http import HttpClient, RateWindow, RetrySettings

    n = args.requests
    body = json.dumps({"batch": []}).encode()
    with fake_process("segment", limited=False) as (url, _stats):
        raw = httpx.Client(base_url=url, auth=(KEY, ""), headers={"Content-Type": "application/json"})
        client = HttpClient(
            "segment",
            url,
            headers={"Content-Type": "application/json"},
            timeout_s=30,
            retry=RetrySettings(),
            windows=[RateWindow(requests=1_000_000, seconds=1)],
            auth=(KEY, ""),
        )
        results = {}
        for label, call in (
            ("raw httpx client", lambda: raw.post("/v1/batch", content=body)),
            ("HttpClient.send (tenacity + limiter)", lambda: client.send("POST", "/v1/batch", content=body)),
        ):
            for _ in range(200):  # warm connections
                call()
            t = time.perf_counter()
            for _ in range(n):
                assert call().status_code == 200
            results[label] = (time.perf_counter() - t) / n * 1e6
        raw.close()
        client.close()
    print(f"# per-request cost, {n:,} sequential empty batches to the Segment fake")
    for label, us in results.items():
        print(f"- {label}: {us:.0f} µs per request")
    added = results["HttpClient.send (tenacity + limiter)"] - results["raw httpx client"]
    print(f"- added by tenacity + limiter: {added:.0f} µs per request")
    from phasegate.destinations.http import RateLimiter

    for size in (1000, 3000):  # Segment's 1,000/s and Braze's 3,000/3 s windows, full
        limiter = RateLimiter([RateWindow(requests=size, seconds=3600)])
        slots = [limiter.acquire() for _ in range(size - 1)]
        for slot in slots:
            limiter.release(slot)
        t = time.perf_counter()
        for _ in range(200):
            slot = limiter.acquire()
            limiter.release(slot)
            limiter._windows[0][2].pop()  # keep the window at size - 1
        us = (time.perf_counter() - t) / 200 * 1e6
        print(f"- limiter acquire + release, window holding {size:,}: {us:.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("kind", choices=["segment", "hubspot"])
    p.add_argument("--limited", action="store_true")
    p.add_argument("--latency", type=float, default=0.0)
    p = sub.add_parser("latency")
    p.add_argument("--records", type=int, default=40_000)
    p.add_argument("--seconds", type=float, default=0.1)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    p = sub.add_parser("unlimited")
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    p = sub.add_parser("limited")
    p.add_argument("--records", type=int, default=75_000)
    p.add_argument("--seconds", type=int, default=60)
    p = sub.add_parser("ack")
    p.add_argument("--customers", type=int, default=200_000)
    p = sub.add_parser("overhead")
    p.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    if args.cmd == "serve":
        return serve(args.kind, args.limited, args.latency)
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    {"unlimited": unlimited, "limited": limited, "overhead": overhead, "latency": latency, "ack": ack}[
        args.cmd
    ](args)


if __name__ == "__main__":
    main()
