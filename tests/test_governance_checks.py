"""Governance gates on generated data with injected faults: each gate blocks when it should
(nothing reaches the file destination, the sync is recorded as blocked, the CLI exits
BLOCKED) and lets a clean run through. One warehouse is built per module (load + two weeks
of backfilled phase history) and copied for every fault."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from conftest import BIN, END, REPO, drop_pg_schemas, warehouse_env
from fakes.hubspot import FakeHubSpot
from phasegate import api
from phasegate.checks import check_source_freshness
from phasegate.config import FreshnessCheck, load_config
from phasegate.errors import BlockedError, ConfigError, ExitCode
from phasegate.warehouse import connect

HISTORY_START = date(2026, 11, 6)  # 15 evaluation dates: enough trailing history for the median
RAW = "raw"
GLOBAL_CHECKS = {
    "dbt_build_passed",
    "membership_expectations",
    "blast_radius",
    "blast_radius_trailing",
    "quarantined_events",
    "source_freshness",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, generated) -> Path:
    """A DuckDB warehouse with the generated sources loaded and phase history backfilled;
    tests copy it rather than rebuild (a build costs minutes)."""
    root = tmp_path_factory.mktemp("governance_built")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in _env(root).items():
            mp.setenv(k, v)
        cfg = load_config(_write_cfg(root))
        api.load_sources(cfg, generated)
        api.backfill(cfg, HISTORY_START, END)
    return root


def _env(root: Path, warehouse_dir: Path | None = None) -> dict[str, str]:
    env = warehouse_env("duckdb", warehouse_dir or root)
    env["DBT_TARGET_PATH"] = str(root / "dbt_target")
    return env


def _write_cfg(directory: Path, checks: dict | None = None, ops: str = "ops", **sync) -> Path:
    path = directory / "phasegate.yml"
    cfg = {
        "version": 1,
        "project_dir": str(REPO),
        "source_schema": RAW,
        "ops_schema": ops,
        "checks": checks or {},
        "syncs": [
            {
                "name": "outbox",
                "destination": {"type": "file", "path": str(directory / "outbox"), "format": "jsonl"},
                "fields": ["orders_lifetime"],
                **sync,
            }
        ],
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def copy(built, tmp_path, monkeypatch):
    """This test's own copy of the built warehouse. The file keeps its name: DuckDB views
    refer to the catalog by the file's stem."""
    wh_dir = tmp_path / "wh"
    wh_dir.mkdir()
    shutil.copy(built / "warehouse.duckdb", wh_dir / "warehouse.duckdb")
    env = _env(built, wh_dir)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return tmp_path, env


def _sql(*statements: str) -> None:
    wh = connect(REPO, None)
    try:
        for s in statements:
            wh.execute(s)
        wh.commit()
    finally:
        wh.close()


def _query(sql: str) -> list[tuple]:
    wh = connect(REPO, None)
    try:
        return wh.query(sql)
    finally:
        wh.close()


def outbox(directory: Path) -> list[dict]:
    root = directory / "outbox"
    return [json.loads(line) for f in sorted(root.rglob("*.jsonl")) for line in f.read_text().splitlines()]


def _blocked(cfg) -> BlockedError:
    with pytest.raises(BlockedError) as info:
        api.activate(cfg, progress=False)
    return info.value


def _failed(exc: BlockedError) -> dict:
    return {r.name: r for r in exc.results if not r.passed}


def _statuses(cfg) -> list[str]:
    return [r[0] for r in _query(f"select status from {cfg.ops_schema}.sync_runs order by started_at")]


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(BIN / "phasegate"), *args], env=full, capture_output=True, text=True, cwd=REPO)


def test_clean_run_passes_every_gate_and_audit_lists_it(copy):
    tmp, env = copy
    path = _write_cfg(tmp, identifiers=["email", "phone"])
    cfg = load_config(path)
    report = api.activate(cfg, progress=False)
    assert {c.name for c in report.checks} == GLOBAL_CHECKS | {"payload_expectations:outbox"}
    assert all(c.passed for c in report.checks), [(c.name, c.message) for c in report.checks if not c.passed]
    trailing = next(c for c in report.checks if c.name == "blast_radius_trailing")
    # The trailing median really applied (not waiting for history) and judged every phase.
    assert trailing.samples and {s["metric"] for s in trailing.samples} == {"changed_share", "size_change"}
    payload = next(c for c in report.checks if c.name == "payload_expectations:outbox")
    assert payload.gx and all(g["success"] for g in payload.gx)
    assert {"expect_column_values_to_be_unique", "expect_column_values_to_match_regex"} <= {
        g["expectation"] for g in payload.gx
    }
    sent = report.syncs[0].sent
    assert sent > 0 and len(outbox(tmp)) == sent

    proc = _cli(["audit", "--config", str(path), "--json"], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = json.loads(proc.stdout)
    assert [r["run_id"] for r in runs] == [report.run_id]
    run = runs[0]
    assert run["config_hash"] == cfg.config_hash() and run["dbt_invocation_id"]
    assert {c["check_name"] for c in run["checks"]} == GLOBAL_CHECKS | {"payload_expectations:outbox"}
    assert [(s["sync_name"], s["status"], s["sent"]) for s in run["syncs"]] == [("outbox", "success", sent)]
    gx = next(c["gx"] for c in run["checks"] if c["check_name"] == "payload_expectations:outbox")
    assert gx and all(g["success"] for g in gx)

    # A per-sync run id finds its activation; the table view names the runs and the checks.
    proc = _cli(["audit", "--config", str(path), "--run-id", f"{report.run_id}_outbox"], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert report.run_id in proc.stdout and "source_freshness" in proc.stdout
    assert "Great Expectations results" in proc.stdout


def test_emptied_source_blocks(copy):
    tmp, _ = copy
    _sql(f"delete from {RAW}.events")
    cfg = load_config(_write_cfg(tmp))
    failed = _failed(_blocked(cfg))
    assert {"quarantined_events", "source_freshness"} <= set(failed)
    assert '"raw"."events"' in failed["source_freshness"].message
    assert outbox(tmp) == []
    assert _statuses(cfg) == ["blocked"]


def _flip_half_the_customers() -> int:
    """Half the lifecycle customers move phase on the latest date, as a broken join would
    make them: transitions, membership and daily phase sizes all say so."""
    latest = END.isoformat()
    _sql(
        f"""create table flip as
        select m.customer_id, m.phase as old_phase,
               case when m.phase = 'active' then 'lapsed' else 'active' end as new_phase, m.entered_on
        from phasegate__phase_membership as m
        where m.journey = 'lifecycle' and hash(m.customer_id) % 2 = 0
          and not exists (select 1 from phasegate__phase_transitions as t where t.journey = m.journey
                          and t.customer_id = m.customer_id and t.transitioned_on = date '{latest}')""",
        f"""insert into phasegate__phase_transitions
        select md5('flip|' || customer_id), 'lifecycle', customer_id, old_phase, new_phase,
               date '{latest}', entered_on, date_diff('day', entered_on, date '{latest}'), null
        from flip""",
        f"""update phasegate__phase_membership as m
        set phase = f.new_phase, previous_phase = f.old_phase, entered_on = date '{latest}'
        from flip as f where m.journey = 'lifecycle' and m.customer_id = f.customer_id""",
        f"""update phasegate__phase_sizes_daily as s
        set customers = s.customers
            + (select count(*) from flip where new_phase = s.phase)
            - (select count(*) from flip where old_phase = s.phase)
        where s.journey = 'lifecycle' and s.day = date '{latest}'""",
    )
    ((n,),) = _query("select count(*) from flip")
    return n


def test_half_the_customers_flipped_blocks(copy):
    tmp, _ = copy
    flipped = _flip_half_the_customers()
    assert flipped > 600  # of 1,500

    cfg = load_config(_write_cfg(tmp))
    failed = _failed(_blocked(cfg))
    assert set(failed) == {"blast_radius", "blast_radius_trailing"}
    worst = failed["blast_radius_trailing"].samples[0]
    assert worst["journey"] == "lifecycle" and not worst["passed"]
    assert worst["observed"] > worst["allowed"] >= worst["trailing_median"]
    metrics = {(s["metric"], s["phase"]) for s in failed["blast_radius_trailing"].samples if not s["passed"]}
    assert ("changed_share", "(all)") in metrics and ("size_change", "active") in metrics
    assert outbox(tmp) == []

    # With the absolute limit out of the way, the trailing median alone still blocks.
    cfg = load_config(_write_cfg(tmp, checks={"max_changed_share": 1.0}))
    assert set(_failed(_blocked(cfg))) == {"blast_radius_trailing"}
    assert outbox(tmp) == []
    assert _statuses(cfg) == ["blocked", "blocked"]


def test_stale_source_blocks_through_the_cli(copy):
    tmp, env = copy
    # The loader stopped on 16 November; the build evaluates 20 November.
    _sql(f"delete from {RAW}.events where received_at >= timestamp '2026-11-17'")
    path = _write_cfg(tmp)
    proc = _cli(["sync", "--config", str(path)], env)
    assert proc.returncode == ExitCode.BLOCKED, proc.stderr[-2000:]
    assert "source_freshness" in proc.stdout and "FAIL" in proc.stdout
    assert '"raw"."events"' in proc.stdout and "2026-11-16" in proc.stdout
    assert outbox(tmp) == []
    assert _statuses(load_config(path)) == ["blocked"]


def test_freshness_is_judged_against_the_evaluated_date(copy):
    """Data ending on the as-of date is fresh however late the check runs (backfills,
    generated data); measured against the wall clock it is not."""
    # After everything the generator lets arrive late (its late events land into December).
    later = datetime(2026, 12, 20, 9, 0)
    wh = connect(REPO, None)
    try:
        as_of = check_source_freshness(wh, FreshnessCheck(), REPO, now=later)
        wall_clock = check_source_freshness(wh, FreshnessCheck(relative_to="now"), REPO, now=later)
        same_day = check_source_freshness(wh, FreshnessCheck(), REPO, now=datetime(2026, 11, 20, 12, 0))
    finally:
        wh.close()
    assert as_of.passed, as_of.observed
    assert not wall_clock.passed and "2026-12-20 09:00" in wall_clock.allowed
    assert wall_clock.samples[0]["age_hours"] > 48
    assert same_day.passed  # reference capped at now: events received later that day don't count


def test_duplicate_keys_in_the_payload_block_the_sync(
    request, warehouse_kind, tmp_path, monkeypatch, generated
):
    if warehouse_kind == "duckdb":
        tmp, _ = request.getfixturevalue("copy")
        schema, raw, ops = "main", RAW, "ops"
        path = _write_cfg(tmp)
    else:
        # The payload suite validates DataFrames on Postgres too; a one-date build suffices.
        tmp = tmp_path
        env = warehouse_env("postgres", tmp)
        env["DBT_TARGET_PATH"] = str(tmp / "dbt_target")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        suffix = uuid.uuid4().hex[:8]
        schema, raw, ops = env["PHASEGATE_PG_SCHEMA"], f"raw_{suffix}", f"ops_{suffix}"
        request.addfinalizer(lambda: drop_pg_schemas(env, schema, raw, ops))
        path = _write_cfg(tmp)
        spec = yaml.safe_load(path.read_text())
        spec.update(source_schema=raw, ops_schema=ops)
        path.write_text(yaml.safe_dump(spec))
        cfg = load_config(path)
        api.load_sources(cfg, generated)
        api.build(cfg, END)
    # A signals model that fans out (a duplicated customer row): the plan repeats keys.
    signals = f'"{schema}".phasegate__customer_signals'
    _sql(
        f"insert into {signals} select * from {signals} "
        f"where customer_id in (select customer_id from {signals} order by customer_id limit 25)"
    )
    cfg = load_config(path)
    exc = _blocked(cfg)
    failed = _failed(exc)
    assert set(failed) == {"payload_expectations:outbox"}, {k: v.message for k, v in failed.items()}
    result = failed["payload_expectations:outbox"]
    unique = [s for s in result.samples if s["expectation"] == "expect_column_values_to_be_unique"]
    assert {s["field"] for s in unique} == {"record_id", "record_key"}
    assert all(s["unexpected"] == 50 for s in unique)  # 25 keys, each twice
    assert "join fans out" in result.message
    assert outbox(tmp) == []
    assert _statuses(cfg) == ["blocked"]
    rows = _query(
        f"select column_name, unexpected_count from {ops}.gx_results "
        "where expectation = 'expect_column_values_to_be_unique' and not success order by 1"
    )
    assert rows == [("record_id", 50), ("record_key", 50)]
    (run,) = api.audit(cfg, limit=5)
    assert run["kind"] == "sync" and run["config_hash"] == cfg.config_hash()
    assert [(s["sync_name"], s["status"]) for s in run["syncs"]] == [("outbox", "blocked")]
    payload = next(c for c in run["checks"] if c["check_name"] == "payload_expectations:outbox")
    assert not payload["passed"] and payload["details"][0]["field"] in ("record_id", "record_key")
    assert {g["column_name"] for g in payload["gx"] if not g["success"]} == {"record_id", "record_key"}


def test_malformed_emails_beyond_the_tolerated_share_block(copy):
    tmp, env = copy
    # About 30% of addresses broken by an upstream change; the generator's own dirt is ~1.5%.
    _sql(
        f"update {RAW}.customers set email = 'broken-' || customer_id "
        "where substr(md5(customer_id), 1, 1) in ('0', '1', '2', '3', '4')"
    )
    ((share,),) = _query(
        f"select avg(case when email like 'broken-%' then 1.0 else 0 end) from {RAW}.customers"
    )
    assert 0.25 < share < 0.4

    path = _write_cfg(tmp, identifiers=["email"])
    cfg = load_config(path)
    failed = _failed(_blocked(cfg))
    assert set(failed) == {"payload_expectations:outbox"}
    result = failed["payload_expectations:outbox"]
    fmt = [s for s in result.samples if s["field"] == "checks.payload.email"]
    assert fmt and fmt[0]["share"] > 0.25 and fmt[0]["unexpected"] > 300
    assert "checks.payload.email.max_invalid_share" in result.message
    # Failing rows are shown by customer key, never by address.
    assert fmt[0]["sample"] and all(k.startswith("c") and "@" not in k for k in fmt[0]["sample"])
    assert "broken-" not in json.dumps([result.samples, result.gx], default=str)
    assert outbox(tmp) == []

    # An override needs a reason; it sends and is recorded with it.
    with pytest.raises(ConfigError):
        api.activate(cfg, force=True, progress=False)
    forced = api.activate(cfg, force=True, reason="addresses fixed at the ESP", progress=False)
    assert forced.syncs[0].status in ("success", "partial") and forced.syncs[0].sent > 0
    proc = _cli(["audit", "--config", str(path), "--json", "--limit", "1"], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = json.loads(proc.stdout)
    assert run["run_id"] == forced.run_id
    assert [o["reason"] for o in run["overrides"]] == ["addresses fixed at the ESP"]
    proc = _cli(["audit", "--config", str(path), "--json"], env)
    assert [r["syncs"][0]["status"] for r in json.loads(proc.stdout)] == [forced.syncs[0].status, "blocked"]

    # Within a configured tolerance the same data passes (fresh ledgers: the full plan again).
    tolerant = tmp / "tolerant"
    tolerant.mkdir()
    checks = {"payload": {"email": {"max_invalid_share": 0.5}}}
    cfg = load_config(_write_cfg(tolerant, checks=checks, ops="ops_tolerant", identifiers=["email"]))
    report = api.activate(cfg, progress=False)
    assert all(c.passed for c in report.checks)
    assert report.syncs[0].upserts > 1000 and len(outbox(tolerant)) == report.syncs[0].sent


def test_check_settings_errors_name_the_field_and_the_fix(tmp_path):
    path = tmp_path / "phasegate.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "checks": {
                    "freshness": {"max_age_hours": 0},
                    "trailing_blast_radius": {"min_history_days": 30},
                    "payload": {
                        "email": {"max_invalid_share": 2},
                        "phone": {"pattern": "(+"},
                        "columns": {"orders_lifetime": {"between": [10, 0]}},
                    },
                },
            }
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "checks.freshness.max_age_hours" in text
    assert "checks.trailing_blast_radius: " in text and "lower min_history_days" in text
    assert "checks.payload.email.max_invalid_share" in text
    assert "checks.payload.phone.pattern" in text and "fix the pattern" in text
    assert "checks.payload.columns.orders_lifetime.between" in text and "swap the bounds" in text

    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "checks": {
                    "payload": {"columns": {"orders_lifetime": {"not_null": True, "syncs": ["nope"]}}}
                },
                "syncs": [{"name": "outbox", "destination": {"type": "file", "path": "x"}}],
            }
        )
    )
    with pytest.raises(ConfigError, match=r"checks.payload.columns.orders_lifetime.syncs: unknown sync"):
        load_config(path)


HUBSPOT_TOKEN = "pat-na1-check-Vb7Qm2Lx9Rt4"
DELIVERY_STATE = (
    "sync_state",
    "delivered_events",
    "held_back_events",
    "activation_decisions",
    "rejected_records",
    "deletion_log",
    "sync_runs",
)


def _delivery_state(ops: str) -> dict[str, list[tuple]]:
    return {t: sorted(_query(f"select * from {ops}.{t}"), key=repr) for t in DELIVERY_STATE}


def test_check_runs_each_syncs_payload_checks_without_sending(copy):
    """`phasegate check` plans every sync as a dry run and runs its payload suite: a bad email
    bound for a destination keyed on email fails the check, naming the sync, the check and the
    customer; nothing reaches the platform and no delivery state changes."""
    tmp, env = copy
    # Every address valid, so one bad address is the only one (the generator's dirt aside).
    _sql(f"update {RAW}.customers set email = customer_id || '@example.com' where email is not null")
    with FakeHubSpot(HUBSPOT_TOKEN) as hubspot:
        path = _write_cfg(
            tmp,
            checks={"payload": {"email": {"max_invalid_share": 0, "tolerated_count": 0}}},
        )
        spec = yaml.safe_load(path.read_text())
        spec["syncs"].insert(
            0,
            {
                "name": "crm",
                "destination": {
                    "type": "hubspot",
                    "base_url": hubspot.url,
                    "access_token_env": "CHECK_HUBSPOT_TOKEN",
                },
                "identifiers": ["email"],
            },
        )
        path.write_text(yaml.safe_dump(spec))
        env = {**env, "CHECK_HUBSPOT_TOKEN": HUBSPOT_TOKEN}
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CHECK_HUBSPOT_TOKEN", HUBSPOT_TOKEN)
            first = api.activate(load_config(path), progress=False)
        assert [s.status for s in first.syncs] == ["success", "success"] and first.syncs[0].sent > 500

        # One customer the crm sync sends to gets an address no destination accepts.
        ((victim,),) = _query(
            "select m.customer_id from phasegate__phase_membership as m "
            "join phasegate__customer_consents as c on c.customer_id = m.customer_id "
            "and c.channel = 'email' and c.is_granted "
            "where m.customer_id not in (select customer_id from phasegate__suppressed_customers) "
            "and m.customer_id not in (select customer_id from phasegate__holdout_assignments "
            "where is_held_out) order by 1 limit 1"
        )
        _sql(f"update {RAW}.customers set email = 'not-an-email' where customer_id = '{victim}'")
        before, requests = _delivery_state("ops"), len(hubspot.requests)

        proc = _cli(["check", "--config", str(path)], env)
        # The Python API gives the same results (and records them as a run of its own).
        results, _ = api.check(load_config(path))
        sent_during_check = hubspot.requests[requests:]

    assert proc.returncode == ExitCode.BLOCKED, proc.stderr[-3000:]
    out = " ".join(proc.stdout.split())
    assert "payload_expectations:crm" in out and "payload_expectations:outbox" in out
    assert "sync 'crm' is blocked" in out and "checks.payload.email" in out
    assert f"'sample': ['{victim}']" in out and "not-an-email" not in proc.stdout
    assert "error: check(s) failed: payload_expectations:crm" in proc.stderr
    assert sent_during_check == []
    assert _delivery_state("ops") == before
    # the plan was rolled back with everything else
    assert not _query("select table_name from information_schema.tables where table_name like 'plan%'")

    expected = {
        **dict.fromkeys(GLOBAL_CHECKS, True),
        "payload_expectations:crm": False,
        "payload_expectations:outbox": True,
    }
    assert {r.name: r.passed for r in results} == expected
    rows = _query("select run_id, check_name, passed from ops.check_results where run_id like 'check_%'")
    by_run: dict[str, dict] = {}
    for run_id, name, passed in rows:
        by_run.setdefault(run_id, {})[name] = passed
    assert list(by_run.values()) == [expected, expected]  # the CLI's check and the API's
    gx = _query(
        "select column_name, unexpected_count from ops.gx_results "
        "where check_name = 'payload_expectations:crm' and not success"
    )
    assert gx == [("email", 1), ("email", 1)]
