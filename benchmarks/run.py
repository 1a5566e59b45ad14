"""Benchmarks (not timed tests): generator, load, full dbt build, one incremental day, and a
hand-written single DuckDB query computing the same signals and phases as a lower bound.

    .venv/bin/python benchmarks/run.py --customers 100000

Each step runs as its own process; wall time and that process's peak RSS are recorded
(os.wait4), and a Markdown table is printed for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from phasegate.dbt_runner import DUCKDB_ALLOCATOR_ENV

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# The lower bounds' events: the first copy of each event_id, customer from user_id or a direct
# anonymous_id -> user_id link; `{received}` is replaced by a received_at condition or nothing.
EVENTS_SQL = """
create or replace table bench_lower_bound as
with ev as (
    select e.*, coalesce(e.user_id, m.user_id) as customer_id
    from (select *, row_number() over (partition by event_id order by received_at) as rn
          from phasegate_raw.events) e
    left join (select identity_value_a as anon, any_value(identity_value_b) as user_id
               from phasegate_raw.identities
               where identity_type_a = 'anonymous_id' and identity_type_b = 'user_id'
               group by 1) m on m.anon = e.anonymous_id
    where e.rn = 1 and e.occurred_at < DATE '{end}' + 1{received}
      and e.occurred_at <= e.received_at + interval 60 minute
),
"""

# The default journey's phases from the signals in `sig`, ending the lower bounds' queries.
PHASE_SQL = """case
    when days_since_signup <= 30 and orders_lifetime = 0 then 'onboarding'
    when days_since_last_order <= 60 then 'active'
    when days_since_last_order between 61 and 120 then 'at_risk'
    when days_since_last_order > 120 then 'lapsed'
    else 'prospect' end as phase
from sig
"""

# The lower bound: every signal of the default registry (macros/signals/registry.sql) and the
# default journey's phases, as of one date, in one query. Identity is simplified to direct
# anonymous_id -> user_id links and there is no validation, history or test: less work than
# the build, as a lower bound should be.
LOWER_BOUND_SQL = (
    EVENTS_SQL.replace("{received}", " and e.received_at < DATE '{end}' + 1")
    + """daily as (
    select customer_id, cast(occurred_at as date) as d,
           count(*) filter (where event_type = 'order') as orders,
           cast(sum(amount) filter (where event_type = 'order') as decimal(28, 6)) as revenue,
           count(*) filter (where event_type not in ('email_sent', 'sms_sent')) as inbound,
           count(*) filter (where event_type in ('page_view', 'app_open')) as sessions,
           count(*) filter (where event_type = 'email_click') as email_clicks,
           count(*) filter (where event_type = 'add_to_cart') as carts
    from ev where customer_id is not null group by 1, 2
),
activity as (
    select customer_id,
           min(d) filter (where inbound > 0) as first_seen_on,
           max(d) filter (where inbound > 0) as last_seen_on,
           sum(orders) as orders_lifetime,
           sum(revenue) as revenue_lifetime,
           sum(orders) filter (where d > DATE '{end}' - 30) as orders_last_30d,
           sum(orders) filter (where d > DATE '{end}' - 90) as orders_last_90d,
           sum(revenue) filter (where d > DATE '{end}' - 90) as revenue_last_90d,
           DATE '{end}' - max(d) filter (where orders > 0) as days_since_last_order,
           DATE '{end}' - min(d) filter (where orders > 0) as days_since_first_order,
           DATE '{end}' - max(d) filter (where inbound > 0) as days_since_last_seen,
           sum(sessions) filter (where d > DATE '{end}' - 7) as sessions_last_7d,
           sum(sessions) filter (where d between DATE '{end}' - 34 and DATE '{end}' - 7) as sessions_prev_28d,
           count(*) filter (where d > DATE '{end}' - 30 and inbound > 0) as active_days_last_30d,
           sum(email_clicks) filter (where d > DATE '{end}' - 30) as email_clicks_last_30d,
           sum(carts) filter (where d > DATE '{end}' - 7) as carts_last_7d
    from daily group by 1
),
consent as (
    select customer_id,
           bool_or(channel = 'email' and status = 'granted') as consent_email,
           bool_or(channel = 'sms' and status = 'granted') as consent_sms,
           bool_or(channel = 'push' and status = 'granted') as consent_push,
           bool_or(channel = 'ads' and status = 'granted') as consent_ads
    from (select *,
                 row_number() over (partition by customer_id, channel order by updated_at desc, status) as rn
          from phasegate_raw.consents where updated_at < DATE '{end}' + 1)
    where rn = 1 group by 1
),
sig as (
    select c.customer_id,
           cast(c.signup_at as date) as signup_on,
           c.country,
           DATE '{end}' - cast(c.signup_at as date) as days_since_signup,
           a.first_seen_on, a.last_seen_on,
           coalesce(a.orders_lifetime, 0) as orders_lifetime,
           coalesce(a.revenue_lifetime, 0) as revenue_lifetime,
           coalesce(a.orders_last_30d, 0) as orders_last_30d,
           coalesce(a.orders_last_90d, 0) as orders_last_90d,
           coalesce(a.revenue_last_90d, 0) as revenue_last_90d,
           a.days_since_last_order, a.days_since_first_order, a.days_since_last_seen,
           coalesce(a.sessions_last_7d, 0) as sessions_last_7d,
           coalesce(a.sessions_prev_28d, 0) as sessions_prev_28d,
           coalesce(a.active_days_last_30d, 0) as active_days_last_30d,
           coalesce(a.email_clicks_last_30d, 0) as email_clicks_last_30d,
           coalesce(a.carts_last_7d, 0) as carts_last_7d,
           coalesce(k.consent_email, false) as consent_email,
           coalesce(k.consent_sms, false) as consent_sms,
           coalesce(k.consent_push, false) as consent_push,
           coalesce(k.consent_ads, false) as consent_ads
    from phasegate_raw.customers c
    left join activity a on a.customer_id = c.customer_id
    left join consent k on k.customer_id = c.customer_id
    where c.signup_at < DATE '{end}' + 1
)
select *,
       cast(sessions_last_7d as double) / nullif(sessions_prev_28d / 4.0, 0) as engagement_velocity,
"""
    + PHASE_SQL
)

# The lower bound up to session 19 (2026-12-06): only the six signals the default phases read.
# Kept so that ratios stay comparable with BENCHMARKS.md's earlier sections.
PHASE_SIGNALS_LOWER_BOUND_SQL = (
    EVENTS_SQL.replace("{received}", "")
    + """daily as (
    select customer_id, cast(occurred_at as date) as d,
           count(*) filter (where event_type = 'order') as orders,
           sum(amount) filter (where event_type = 'order') as revenue,
           count(*) filter (where event_type not in ('email_sent', 'sms_sent')) as inbound
    from ev where customer_id is not null group by 1, 2
),
sig as (
    select c.customer_id,
           DATE '{end}' - cast(c.signup_at as date) as days_since_signup,
           coalesce(sum(orders), 0) as orders_lifetime,
           coalesce(sum(orders) filter (where d > DATE '{end}' - 30), 0) as orders_last_30d,
           DATE '{end}' - max(d) filter (where orders > 0) as days_since_last_order,
           DATE '{end}' - max(d) filter (where inbound > 0) as days_since_last_seen,
           coalesce(sum(revenue), 0) as revenue_lifetime
    from phasegate_raw.customers c left join daily on daily.customer_id = c.customer_id
    where c.signup_at < DATE '{end}' + 1
    group by 1, 2
)
select *, """
    + PHASE_SQL
)


# What arrives on the benchmark's last day, by the column that says when: a daily schedule
# builds after each day's arrivals, so the full build must not see them.
ARRIVALS = {
    "customers": "signup_at",
    "identities": "observed_at",
    "events": "received_at",
    "consents": "updated_at",
}


# Runs one SQL string (statements separated by semicolons) on the benchmark's database.
DUCKDB_RUNNER = (
    "import duckdb,sys; c=duckdb.connect(sys.argv[1]); c.execute(\"set TimeZone='UTC'\"); "
    "c.execute(sys.argv[2])"
)


def duckdb_command(sql: str, env: dict) -> list[str]:
    """The command that runs `sql` on the benchmark's database in a process of its own."""
    return [sys.executable, "-c", DUCKDB_RUNNER, env["PHASEGATE_DUCKDB_PATH"], sql]


def duckdb_sql(sql: str, env: dict) -> None:
    subprocess.run(duckdb_command(sql, env), check=True)


# Not timed: part of the landing, not of the build.
ARRIVAL_ORDER_SQL = (
    "create table phasegate_raw.events_by_arrival as "
    "select * from phasegate_raw.events order by received_at; "
    "drop table phasegate_raw.events; "
    "alter table phasegate_raw.events_by_arrival rename to events;"
)


def hold_back_sql(day: date) -> str:
    """Move the rows arriving on or after `day` out of the sources, into held_* tables."""
    parts = []
    for table, column in ARRIVALS.items():
        cond = f"{column} >= timestamp '{day.isoformat()} 00:00:00'"
        parts.append(
            f"create or replace table phasegate_raw.held_{table} as "
            f"select * from phasegate_raw.{table} where {cond}; "
            f"delete from phasegate_raw.{table} where {cond};"
        )
    return " ".join(parts)


def land_sql() -> str:
    """Put the held rows back into the sources, as a loader landing that day would."""
    return " ".join(
        f"insert into phasegate_raw.{t} select * from phasegate_raw.held_{t}; "
        f"drop table phasegate_raw.held_{t};"
        for t in ARRIVALS
    )


def slowest_nodes(target: Path, keep: int = 10) -> list[dict]:
    """The dbt nodes that took longest in the last invocation, from its run_results.json."""
    path = target / "run_results.json"
    if not path.exists():
        return []
    rows = json.loads(path.read_text())["results"]
    rows.sort(key=lambda r: r["execution_time"], reverse=True)
    return [{"node": r["unique_id"], "seconds": round(r["execution_time"], 2)} for r in rows[:keep]]


def step(name: str, cmd: list[str], env: dict) -> dict:
    (Path(env["DBT_TARGET_PATH"]) / "run_results.json").unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed:\n{stderr[-3000:]}")
    # Kept per step: its node timings (start and end per thread) show the build's critical path.
    results_file = Path(env["DBT_TARGET_PATH"]) / "run_results.json"
    if results_file.exists():
        slug = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
        shutil.copy(results_file, Path(env["DBT_TARGET_PATH"]).parent / f"run_results_{slug}.json")
    return {
        "step": name,
        "seconds": round(elapsed, 2),
        # User plus system CPU of the step's process tree: with 2 cores, wall time says how
        # well a step overlaps its work, CPU time how much work there is. The machine's speed
        # moved the wall times of unchanged steps by up to half between sessions.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        # Blocks the process read from and wrote to disk (512-byte units; page-cache hits are
        # not counted): at 1M customers a step moves gigabytes, and compression settings
        # trade these bytes against CPU.
        "disk_read_mb": round(usage.ru_inblock * 512 / 1e6),
        "disk_written_mb": round(usage.ru_oublock * 512 / 1e6),
        "slowest_nodes": slowest_nodes(Path(env["DBT_TARGET_PATH"])),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    ap.add_argument("--lower-bound-runs", type=int, default=3, help="runs of the lower bound (median)")
    ap.add_argument(
        "--snapshot",
        action="store_true",
        help="copy the database after the full build to OUT/after_full_<N>.duckdb, so the "
        "incremental day can be replayed while profiling (copying is not timed)",
    )
    ap.add_argument(
        "--day-with-new-links",
        type=int,
        default=0,
        metavar="N",
        help="with --snapshot: afterwards, replay the incremental day from the snapshot with N new "
        "identity links (new anonymous ids of existing customers, observed that day), so the "
        "identity graph must be recomputed; the benchmark's own day changes no link",
    )
    ap.add_argument(
        "--no-hold-back",
        action="store_true",
        help="load every source row before the full build, as sessions up to 13 did: the day "
        "then takes in only the last day's events (already-collected identity links, signups "
        "and consents change nothing); by default the last day's arrivals land after it",
    )
    ap.add_argument(
        "--arrival-order",
        action="store_true",
        help="after the load, store the events in the order they were received, as a loader "
        "appending each batch of arrivals leaves them; the generator writes them customer by "
        "customer, so every row group spans the whole year and no scan by received_at can skip one",
    )
    args = ap.parse_args()
    if args.day_with_new_links and not args.snapshot:
        ap.error("--day-with-new-links needs --snapshot")
    end = date(2026, 11, 20)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / f"data_{args.customers}"
    # The allocator setting phasegate gives dbt (dbt_runner.py) goes to every step, the lower
    # bounds included, so they compare alike.
    env = dict(
        {**DUCKDB_ALLOCATOR_ENV, **os.environ},
        PHASEGATE_DUCKDB_PATH=str(args.out / f"bench_{args.customers}.duckdb"),
        PHASEGATE_TARGET="duckdb",
        DBT_TARGET_PATH=str(args.out / "target"),
    )
    Path(env["PHASEGATE_DUCKDB_PATH"]).unlink(missing_ok=True)
    pg = str(BIN / "phasegate")
    cfg = ["--config", str(args.out / "bench.yml")]
    (args.out / "bench.yml").write_text(f"version: 1\nproject_dir: {REPO}\n")
    results: list[dict] = [
        step(
            "generate",
            [
                pg,
                "generate",
                "--customers",
                str(args.customers),
                "--days",
                str(args.days),
                "--seed",
                str(args.seed),
                "--out",
                str(data),
                "--end-date",
                end.isoformat(),
            ],
            env,
        ),
        step("load", [pg, "load", "--data", str(data), *cfg], env),
    ]
    if args.arrival_order:
        duckdb_sql(ARRIVAL_ORDER_SQL, env)
    if not args.no_hold_back:
        duckdb_sql(hold_back_sql(end), env)
    results += [
        # The full build sees the data as of the day before the last; the incremental day then
        # takes in the last day's arrivals, as a daily scheduled run would.
        step(
            "dbt build (full)",
            [pg, "build", "--full-refresh", "--as-of", (end - timedelta(days=1)).isoformat(), *cfg],
            env,
        ),
    ]
    if args.snapshot:
        shutil.copy(env["PHASEGATE_DUCKDB_PATH"], args.out / f"after_full_{args.customers}.duckdb")
    if not args.no_hold_back:
        duckdb_sql(land_sql(), env)
    results.append(
        step("dbt build (one incremental day)", [pg, "build", "--as-of", end.isoformat(), *cfg], env)
    )
    lower = LOWER_BOUND_SQL.format(end=end.isoformat())
    # The lower bound moved by 30% between identical runs on one machine, so it
    # runs several times and the ratio uses the median.
    bounds = [
        step(
            f"hand-written single query (lower bound), run {i + 1}",
            duckdb_command(lower, env),
            env,
        )
        for i in range(args.lower_bound_runs)
    ]
    results.extend(bounds)
    phase_signals_bound = step(
        "hand-written single query, phase signals only (lower bound up to session 19)",
        duckdb_command(PHASE_SIGNALS_LOWER_BOUND_SQL.format(end=end.isoformat()), env),
        env,
    )
    results.append(phase_signals_bound)
    if args.day_with_new_links:
        shutil.copy(args.out / f"after_full_{args.customers}.duckdb", env["PHASEGATE_DUCKDB_PATH"])
        add_links = (
            "insert into phasegate_raw.identities "
            "(identity_type_a, identity_value_a, identity_type_b, identity_value_b, observed_at) "
            "select 'anonymous_id', 'bench-new-anon-' || customer_id, 'user_id', customer_id, "
            f"timestamptz '{end.isoformat()} 12:00:00+00' "
            f"from phasegate_raw.customers order by hash(customer_id) limit {args.day_with_new_links}"
        )
        if not args.no_hold_back:
            duckdb_sql(land_sql(), env)
        duckdb_sql(add_links, env)
        results.append(
            step(
                f"dbt build (one incremental day, {args.day_with_new_links} new identity links)",
                [pg, "build", "--as-of", end.isoformat(), *cfg],
                env,
            )
        )
    truth = json.loads((data / "truth.json").read_text())
    meta = {
        "customers": args.customers,
        "events": truth["rows"]["events"],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "started": started,
        "command": " ".join(["benchmarks/run.py", *sys.argv[1:]]),
    }
    (args.out / f"results_{args.customers}.json").write_text(json.dumps({"meta": meta, "steps": results}))
    full = results[2]["seconds"]
    bound = statistics.median(b["seconds"] for b in bounds)
    print(f"{args.customers:,} customers, {meta['events']:,} events — {meta['machine']}")
    print("| step | seconds | CPU seconds | peak RSS (MB) | disk read (MB) | disk written (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        cells = [
            r["step"],
            r["seconds"],
            r["cpu_seconds"],
            r["peak_rss_mb"],
            r["disk_read_mb"],
            r["disk_written_mb"],
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    for r in results:
        for n in r["slowest_nodes"]:
            print(f"  {r['step']}: {n['node']} {n['seconds']} s")
    print(
        f"\nfull build / lower bound (median of {len(bounds)}): {full / bound:.2f}x; "
        f"incremental day / full build: {results[3]['seconds'] / full:.0%}; "
        f"full build / phase-signals-only lower bound: {full / phase_signals_bound['seconds']:.2f}x"
    )
    cpu_bound = statistics.median(b["cpu_seconds"] for b in bounds)
    print(
        f"in CPU seconds: full build / lower bound {results[2]['cpu_seconds'] / cpu_bound:.2f}x; "
        f"incremental day / full build {results[3]['cpu_seconds'] / results[2]['cpu_seconds']:.0%}"
    )


if __name__ == "__main__":
    main()
