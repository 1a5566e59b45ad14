"""The thin end-to-end path on generated data: load -> build/backfill -> checks -> sync to
the file destination, through the Python API and the CLI, on DuckDB and Postgres."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from conftest import BIN, END, REPO, drop_pg_schemas, warehouse_env
from phasegate import api
from phasegate.config import load_config
from phasegate.dbt_runner import DUCKDB_ALLOCATOR_ENV, reads_as_of_from_env, run_dbt
from phasegate.errors import BlockedError, BuildError, ExitCode
from phasegate.warehouse import connect, qualified


@pytest.fixture
def pipeline(tmp_path, warehouse_kind, monkeypatch, generated):
    """A phasegate.yml over this repo's dbt project, with its own warehouse, schemas,
    dbt target path and outbox."""
    env = warehouse_env(warehouse_kind, tmp_path)
    env["DBT_TARGET_PATH"] = str(tmp_path / "dbt_target")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    suffix = uuid.uuid4().hex[:8]
    cfg = {
        "version": 1,
        "project_dir": str(REPO),
        "source_schema": f"raw_{suffix}",
        "ops_schema": f"ops_{suffix}",
        "syncs": [
            {
                "name": "outbox",
                "destination": {"type": "file", "path": str(tmp_path / "outbox"), "format": "jsonl"},
                "fields": ["orders_lifetime", "days_since_last_order"],
                "field_mapping": {"orders_lifetime": "total_orders"},
            }
        ],
    }
    path = tmp_path / "phasegate.yml"
    path.write_text(yaml.safe_dump(cfg))
    yield path, env
    if warehouse_kind == "postgres":
        drop_pg_schemas(env, env["PHASEGATE_PG_SCHEMA"], cfg["source_schema"], cfg["ops_schema"])


def outbox_records(cfg) -> list[dict]:
    root = Path(cfg.syncs[0].destination.path)
    return [json.loads(line) for f in sorted(root.rglob("*.jsonl")) for line in f.read_text().splitlines()]


def assert_bi_marts_agree(cfg) -> None:
    """The stakeholder marts tell one story with the phase tables they summarise."""
    wh = connect(Path(cfg.project_dir), cfg.target)
    try:

        def q(sql: str) -> list[tuple]:
            return wh.query(sql.format(**{t: qualified(wh.schema, f"phasegate__{t}") for t in MARTS}))

        membership = dict(q("select phase, count(*) from {phase_membership} group by 1"))
        days = [d for (d,) in q("select distinct transitioned_on from {phase_transitions}")]
        assert len(days) == 7  # the backfilled week
        # Out of every starting phase, the move probabilities of each window sum to 1, and
        # each window accounts for every current customer once.
        for window, start, total in q(
            "select window_days, from_phase, sum(probability) from {transition_matrix} group by 1, 2"
        ):
            assert abs(float(total) - 1) < 1e-6, (window, start, total)
        assert {
            n for _, n in q("select window_days, sum(customers) from {transition_matrix} group by 1")
        } == {sum(membership.values())}
        # Sizes on the last day are the current membership; on every day, the history intervals.
        last = {
            p: n
            for p, n in q(
                "select phase, customers from {phase_sizes_daily} "
                "where day = (select max(day) from {phase_sizes_daily})"
            )
            if n
        }
        assert last == membership
        for day in days:
            sizes = {
                p: n
                for p, n in q(f"select phase, customers from {{phase_sizes_daily}} where day = '{day}'")
                if n
            }
            covering = dict(
                q(
                    "select phase, count(*) from {phase_history} "
                    f"where valid_from <= '{day}' and (valid_to is null or valid_to > '{day}') group by 1"
                )
            )
            assert sizes == covering, day
        # Every stay is in the time-in-phase distribution; KPIs count the current phases.
        assert q("select sum(stays) from {time_in_phase}") == q("select count(*) from {phase_history}")
        assert {p: n for p, n in q("select phase, customers from {phase_kpis}") if n} == membership
    finally:
        wh.close()


MARTS = (
    "phase_membership",
    "phase_transitions",
    "transition_matrix",
    "phase_sizes_daily",
    "phase_history",
    "time_in_phase",
    "phase_kpis",
)


# Node kinds every build runs besides tests: the on-run-start hook (config validation),
# seeds, models and the exposures of the marts.
BUILT = {"operation", "seed", "model", "exposure"}


def built_kinds(inv) -> set[str]:
    """The kinds of dbt node a build ran (all of them passed, or it would have raised)."""
    return {r["unique_id"].split(".")[0] for r in inv.run_results["results"]}


def test_end_to_end_sync_is_incremental_and_rerunnable(pipeline, generated):
    path, _ = pipeline
    cfg = load_config(path)
    rows = api.load_sources(cfg, generated)
    truth = json.loads((generated / "truth.json").read_text())
    assert rows["customers"] == truth["rows"]["customers"]
    api.backfill(cfg, date(2026, 11, 14), END)
    assert_bi_marts_agree(cfg)

    report = api.activate(cfg, progress=False)
    assert all(c.passed for c in report.checks), [(c.name, c.message) for c in report.checks]
    first = report.syncs[0]
    # Everyone but the customers on the generated suppression list (no holdout, and a file
    # destination needs no consent).
    suppressed = first.held_back.get("suppressed", 0)
    assert 0 < suppressed < 30 and set(first.held_back) <= {"suppressed", "suppressed_events"}
    assert first.upserts == 1500 - suppressed and first.removes == 0
    assert first.events > 0  # transitions during the backfilled week, entered + exited
    assert first.sent == first.upserts + first.events and first.rejected == 0

    records = outbox_records(cfg)
    assert len(records) == first.sent
    assert len({r["record_id"] for r in records}) == len(records)
    upserts = [r for r in records if r["kind"] == "upsert"]
    assert {"lifecycle_phase", "lifecycle_phase_entered_on", "total_orders"} <= set(upserts[0])
    assert all(isinstance(r["total_orders"], int) for r in upserts)

    # Rebuilding the same day and syncing again sends nothing. A scheduled build runs the
    # data tests but not the package's unit tests (static fixtures); asked, it runs them too.
    assert built_kinds(api.build(cfg, END)) == BUILT | {"test"}
    again = api.activate(cfg, progress=False).syncs[0]
    assert (again.upserts, again.removes, again.events, again.sent) == (0, 0, 0, 0)

    # The next day: only customers whose attributes changed, and that day's phase events.
    next_day = api.build(cfg, date(2026, 11, 21), unit_tests=True)
    assert built_kinds(next_day) == BUILT | {"test", "unit_test"}
    nxt = api.activate(cfg, progress=False).syncs[0]
    assert 0 < nxt.upserts < 1500  # days_since_last_order moves for buyers; not for prospects
    assert len(outbox_records(cfg)) == first.sent + nxt.sent


def test_backfill_matches_day_by_day_builds(tmp_path, monkeypatch, generated, capfd):
    """The backfill operation and scheduled daily builds share SQL and give the same history.
    Daily builds pass the date in the environment, not in --vars, so after the first build dbt
    parses only what changed."""
    histories = []
    for mode in ("backfill", "daily"):
        env = warehouse_env("duckdb", tmp_path / mode)
        (tmp_path / mode).mkdir()
        env["DBT_TARGET_PATH"] = str(tmp_path / mode / "target")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        cfg = load_config(_write_cfg(tmp_path / mode))
        api.load_sources(cfg, generated)
        if mode == "backfill":
            api.backfill(cfg, date(2026, 11, 16), END)
        else:
            for day in range(16, 21):
                capfd.readouterr()
                api.build(cfg, date(2026, 11, day))
                full_parse = "Unable to do partial parsing" in capfd.readouterr().err
                assert full_parse == (day == 16), day
        import duckdb

        con = duckdb.connect(env["PHASEGATE_DUCKDB_PATH"], read_only=True)
        histories.append(sorted(con.execute("select * from phasegate__phase_transitions").fetchall()))
        con.close()
    assert histories[0] == histories[1]
    assert len({r[5] for r in histories[0]}) > 1  # changes on several days, not only placements


def _one_model_project(tmp_path: Path, name: str, model: str, sql: str, monkeypatch) -> Path:
    """A dbt project of one model, on a DuckDB file at tmp_path / "w.duckdb"."""
    project = tmp_path / name
    (project / "models").mkdir(parents=True)
    (project / "models" / f"{model}.sql").write_text(sql)
    (project / "dbt_project.yml").write_text(f"name: {name}\nversion: '1.0'\nconfig-version: 2\nprofile: p\n")
    outputs = {"d": {"type": "duckdb", "path": str(tmp_path / "w.duckdb")}}
    (project / "profiles.yml").write_text(yaml.safe_dump({"p": {"target": "d", "outputs": outputs}}))
    monkeypatch.setenv("DBT_TARGET_PATH", str(project / "target"))
    return project


def test_the_date_goes_as_a_var_to_a_package_that_does_not_read_it(tmp_path, monkeypatch):
    """A dbt project whose phasegate package predates PHASEGATE_AS_OF gets the date as a var;
    one whose macros read the variable but lack phasegate's macro fails the run, saying why."""
    project = _one_model_project(tmp_path, "old_package", "one", "select 1 as x", monkeypatch)
    inv = run_dbt(["parse"], project, as_of=date(2026, 11, 20))
    assert inv.command[inv.command.index("--vars") + 1] == "{phasegate__as_of: '2026-11-20'}"

    (project / "macros").mkdir()
    (project / "macros" / "dates.sql").write_text(
        "{% macro my_date() %}{{ return(env_var('PHASEGATE_AS_OF', '')) }}{% endmacro %}"
    )
    assert reads_as_of_from_env(project)
    with pytest.raises(BuildError, match="did not load phasegate's as_of_setting.*instead of 2026-11-20"):
        run_dbt(["parse"], project, as_of=date(2026, 11, 20))


def test_dbt_runs_with_duckdbs_allocator_setting_unless_the_caller_chose_one(tmp_path, monkeypatch):
    """dbt gets the jemalloc option that keeps freed pages for reuse (dbt_runner.py), which the
    DuckDB library it loads accepts; a value the caller set is passed on unchanged."""
    [(variable, value)] = DUCKDB_ALLOCATOR_ENV.items()
    sql = f"select '{{{{ env_var('{variable}', 'unset') }}}}' as conf"
    project = _one_model_project(tmp_path, "allocator", "seen", sql, monkeypatch)
    db = tmp_path / "w.duckdb"

    def seen() -> str:
        run_dbt(["run"], project)
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("select conf from seen").fetchone()[0]

    monkeypatch.delenv(variable, raising=False)
    assert seen() == value
    monkeypatch.setenv(variable, "dirty_decay_ms:500")
    assert seen() == "dirty_decay_ms:500"

    # jemalloc names an option it does not know on stderr and ignores it; stats_print shows
    # the options in force when the process exits.
    probe = subprocess.run(
        [sys.executable, "-c", "import duckdb; duckdb.connect().execute('select 1')"],
        env={**os.environ, variable: f"{value},stats_print:true"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Invalid conf" not in probe.stderr
    name, setting = value.split(":")
    assert f"opt.{name}: {setting} " in probe.stderr


def _write_cfg(directory: Path, **checks) -> Path:
    path = directory / "phasegate.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "project_dir": str(REPO),
                "source_schema": "raw",
                "checks": checks,
                "syncs": [
                    {"name": "outbox", "destination": {"type": "file", "path": str(directory / "outbox")}}
                ],
            }
        )
    )
    return path


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "phasegate"), *args], env=env, capture_output=True, text=True, cwd=REPO)


def test_blocked_activation_sends_nothing_and_says_why(pipeline, generated):
    path, env = pipeline
    cfg = load_config(path)
    api.load_sources(cfg, generated)
    # Long enough for customers placed on day one to outlast the 3-day minimum dwell.
    api.backfill(cfg, date(2026, 11, 14), END)

    # A limit no real day can meet: the latest evaluation moved some customers.
    raw = yaml.safe_load(path.read_text())
    raw["checks"] = {"max_changed_share": 0.0}
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)
    with pytest.raises(BlockedError) as info:
        api.activate(cfg, progress=False)
    failed = [r for r in info.value.results if not r.passed]
    assert [r.name for r in failed] == ["blast_radius"]
    assert failed[0].samples and failed[0].samples[0]["changed"] > 0
    assert outbox_records(cfg) == []

    proc = _cli(["sync", "--config", str(path)], env)
    assert proc.returncode == ExitCode.BLOCKED
    assert "blast_radius" in proc.stdout and "FAIL" in proc.stdout
    assert outbox_records(cfg) == []

    # An override needs a reason, and is recorded with it.
    proc = _cli(["sync", "--config", str(path), "--force"], env)
    assert proc.returncode == ExitCode.CONFIG and "--reason" in proc.stderr
    proc = _cli(["sync", "--config", str(path), "--force", "--reason", "planned repricing"], env)
    assert proc.returncode == ExitCode.OK, proc.stderr[-2000:]
    assert len(outbox_records(cfg)) > 0
    from phasegate.warehouse import connect

    wh = connect(REPO, None)
    try:
        rows = wh.query(f"select message from {cfg.ops_schema}.check_results where check_name = 'override'")
        statuses = [
            r[0] for r in wh.query(f"select status from {cfg.ops_schema}.sync_runs order by started_at")
        ]
    finally:
        wh.close()
    assert rows == [("forced: planned repricing",)]
    assert statuses == ["blocked", "blocked", "success"]


def test_failed_dbt_tests_block_activation(pipeline, generated, tmp_path):
    path, env = pipeline
    cfg = load_config(path)
    # Duplicate customer rows: the staging primary-key test fails, and so must activation.
    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("identities", "events", "consents"):
        (bad / f"{name}.parquet").write_bytes((generated / f"{name}.parquet").read_bytes())
    customers = pq.read_table(generated / "customers.parquet")
    pq.write_table(pa.concat_tables([customers, customers.slice(0, 3)]), bad / "customers.parquet")
    api.load_sources(cfg, bad)
    proc = _cli(["build", "--config", str(path), "--as-of", END.isoformat()], env)
    assert proc.returncode == ExitCode.BUILD_FAILED
    assert "unique_stg_phasegate__customers_customer_id" in proc.stderr
    proc = _cli(["check", "--config", str(path)], env)
    assert proc.returncode == ExitCode.BLOCKED
    assert "dbt_build_passed" in proc.stdout and "FAIL" in proc.stdout


def test_cli_reports_configuration_errors(tmp_path):
    bad = tmp_path / "phasegate.yml"
    bad.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "syncs": [
                    {"name": "ok_name", "destination": {"type": "file", "path": "x"}, "feilds": ["a"]},
                    {"name": "Bad-Name", "destination": {"type": "carrier_pigeon"}},
                ],
            }
        )
    )
    proc = subprocess.run(
        [str(BIN / "phasegate"), "sync", "--config", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == ExitCode.CONFIG
    assert "syncs[0] (sync 'ok_name').feilds: unknown field" in proc.stderr
    assert "syncs[1] (sync 'Bad-Name').name" in proc.stderr
    assert "carrier_pigeon" in proc.stderr or "destination" in proc.stderr


def test_phases_match_the_generators_ground_truth(tmp_path, monkeypatch, generated):
    """Phases recomputed in pandas from the generator's truth file (true orders, no dirty
    copies) equal what the warehouse derives from the dirty event stream."""
    import duckdb
    import pandas as pd

    env = warehouse_env("duckdb", tmp_path)
    env["DBT_TARGET_PATH"] = str(tmp_path / "target")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = load_config(_write_cfg(tmp_path))
    api.load_sources(cfg, generated)
    api.build(cfg, END)

    truth = pd.read_parquet(generated / "truth.parquet")
    customers = pd.read_parquet(generated / "customers.parquet", columns=["customer_id", "signup_at"])
    df = truth.merge(customers, on="customer_id")
    end = pd.Timestamp(END)
    since_signup = (end - df["signup_at"].dt.tz_localize(None).dt.normalize()).dt.days
    since_order = (end - df["last_order_at"].dt.tz_localize(None).dt.normalize()).dt.days

    def expected(i) -> str:
        if since_signup[i] <= 30 and df["n_orders"][i] == 0:
            return "onboarding"
        if pd.notna(since_order[i]):
            if since_order[i] <= 60:
                return "active"
            return "at_risk" if since_order[i] <= 120 else "lapsed"
        return "prospect"

    want = {df["customer_id"][i]: expected(i) for i in range(len(df))}
    con = duckdb.connect(env["PHASEGATE_DUCKDB_PATH"], read_only=True)
    got = dict(con.execute("select customer_id, phase from phasegate__phase_membership").fetchall())
    orders = dict(
        con.execute("select customer_id, orders_lifetime from phasegate__customer_signals").fetchall()
    )
    con.close()
    assert got == want
    # As of END the warehouse knows the orders received by then (point in time): the truth
    # minus orders whose first copy the generator delivered late, after END.
    ev = pd.read_parquet(
        generated / "events.parquet", columns=["event_id", "event_type", "received_at", "user_id"]
    )
    ev = ev[ev["event_type"] == "order"]
    assert ev["user_id"].notna().all()  # orders are server-side: never anonymous, never id-less
    first = ev.groupby("event_id").agg(received_at=("received_at", "min"), user_id=("user_id", "first"))
    arrived_late = first[first["received_at"].dt.tz_localize(None) >= end + pd.Timedelta(days=1)]
    unknown_at_end = arrived_late.groupby("user_id").size()
    assert len(arrived_late) > 0  # the comparison exercises late arrivals
    known = df["n_orders"] - df["customer_id"].map(unknown_at_end).fillna(0).astype(int)
    assert orders == dict(zip(df["customer_id"], known, strict=True))
    # The truth file has every phase represented, so the comparison is not vacuous.
    assert set(want.values()) == {"onboarding", "active", "at_risk", "lapsed", "prospect"}
    _lower_bound_computes_the_same_signals_and_phases(env["PHASEGATE_DUCKDB_PATH"], want)


def _lower_bound_computes_the_same_signals_and_phases(db: str, phases: dict[str, str]) -> None:
    """The benchmark's lower bound (benchmarks/run.py), run on the same warehouse, computes
    every column of phasegate__customer_signals and the same phases: the full build's ratio
    to it compares like with like."""
    import importlib.util

    import duckdb

    spec = importlib.util.spec_from_file_location("bench_run", REPO / "benchmarks" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    con = duckdb.connect(db)
    con.execute("set TimeZone = 'UTC'")
    # This test's configuration loads the sources into schema `raw` (the benchmark's default is
    # phasegate_raw).
    con.execute(bench.LOWER_BOUND_SQL.format(end=END.isoformat()).replace("phasegate_raw.", "raw."))
    signals = {
        c for (c,) in con.execute("select column_name from (describe phasegate__customer_signals)").fetchall()
    }
    bound = {c for (c,) in con.execute("select column_name from (describe bench_lower_bound)").fetchall()}
    assert bound == signals - {"as_of_date"} | {"phase"}
    assert dict(con.execute("select customer_id, phase from bench_lower_bound").fetchall()) == phases
    # Values agree wherever the build's validation and identity stitching do not change them:
    # for customers with no quarantined event, whose anonymous events the build resolves
    # through a direct anonymous_id -> user_id link, as the lower bound does, and none of whose
    # anonymous ids is linked to another user too (the lower bound picks any one of them).
    differs_by_design = """
        select v.customer_id from int_events_validated as v
        where v.customer_id is not null and v.quarantine_reason is not null
        union
        select v.customer_id from int_events_validated as v
        left join raw.identities as i
            on i.identity_type_a = 'anonymous_id' and i.identity_value_a = v.anonymous_id
            and i.identity_type_b = 'user_id' and i.identity_value_b = v.customer_id
        where v.user_id is null and v.customer_id is not null and i.identity_value_a is null
        union
        select i.identity_value_b from raw.identities as i
        where i.identity_type_a = 'anonymous_id' and i.identity_type_b = 'user_id'
            and i.identity_value_b is not null
            and i.identity_value_a in (
                select s.identity_value_a from raw.identities as s
                where s.identity_type_a = 'anonymous_id' and s.identity_type_b = 'user_id'
                group by s.identity_value_a
                having count(distinct s.identity_value_b) > 1
            )
    """
    compared = [c for c in sorted(signals) if c not in ("customer_id", "as_of_date")]
    compared_customers, *differing = con.execute(
        "select count(*), "
        + ", ".join(f"count(*) filter (where b.{c} is distinct from s.{c})" for c in compared)
        + " from bench_lower_bound as b join phasegate__customer_signals as s using (customer_id)"
        f" where b.customer_id not in ({differs_by_design})"
    ).fetchone()
    con.close()
    assert compared_customers > len(phases) / 2  # most customers, so the comparison is not vacuous
    assert dict(zip(compared, differing, strict=True)) == dict.fromkeys(compared, 0)
