"""The Python API the CLI (and schedulers such as Airflow or Dagster) call:
load -> build -> check -> sync, and the demo that strings them together."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from phasegate.checks import CheckResult, run_checks
from phasegate.config import PhasegateConfig, SyncConfig
from phasegate.dbt_runner import DbtInvocation, run_dbt, target_dir
from phasegate.errors import (
    BlockedError,
    ConfigError,
    DestinationError,
    ExitCode,
    LockHeldError,
    PhasegateError,
    most_severe,
    severity_rank,
)
from phasegate.ledger import Ledger
from phasegate.sync import SyncSummary, new_run_id, run_sync
from phasegate.warehouse import Warehouse, connect, qualified

log = logging.getLogger(__name__)

SOURCE_TABLES = ("customers", "identities", "events", "consents")
UNIT_TESTS_EXCLUDED = ["--exclude-resource-type", "unit_test"]


def _source_schema(project_dir: Path) -> str:
    import yaml

    proj = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    scoped = (proj.get("vars") or {}).get("phasegate") or {}
    return scoped.get("phasegate__source_schema", "phasegate_raw")


def load_sources(cfg: PhasegateConfig, data_dir: Path, schema: str | None = None) -> dict[str, int]:
    """Load the source-contract Parquet files into the warehouse's source schema."""
    project_dir = Path(cfg.project_dir)
    schema = schema or cfg.source_schema or _source_schema(project_dir)
    missing = [t for t in SOURCE_TABLES if not (data_dir / f"{t}.parquet").exists()]
    if missing:
        raise ConfigError(
            f"{data_dir} lacks {', '.join(m + '.parquet' for m in missing)}; "
            "generate data with `phasegate generate` or point --data at the files"
        )
    wh = connect(project_dir, cfg.target)
    try:
        rows = {t: wh.load_parquet(schema, t, data_dir / f"{t}.parquet") for t in SOURCE_TABLES}
        rows["suppressions"] = _load_suppressions(wh, schema, data_dir)
        return rows
    finally:
        wh.close()


def _load_suppressions(wh: Warehouse, schema: str, data_dir: Path) -> int:
    """The suppression list is optional in a data folder; without one an empty table is
    created, so the suppression source (on by default) exists and suppresses nobody."""
    path = data_dir / "suppressions.parquet"
    if path.exists():
        return wh.load_parquet(schema, "suppressions", path)
    import tempfile

    import pyarrow.parquet as pq

    from phasegate.generator.writer import SCHEMAS

    log.info("%s has no suppressions.parquet; creating an empty suppression list", data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "suppressions.parquet"
        pq.write_table(SCHEMAS["suppressions"].empty_table(), empty)
        return wh.load_parquet(schema, "suppressions", empty)


def build(
    cfg: PhasegateConfig,
    as_of: date | None = None,
    full_refresh: bool = False,
    select: str | None = None,
    unit_tests: bool = False,
) -> DbtInvocation:
    """`dbt build`: models, seeds and their data tests. The package's dbt unit tests check
    its SQL on static fixtures, not the data, so a scheduled build leaves them out, as dbt
    recommends for production (they ran on the critical path of every daily build);
    `unit_tests=True` runs them too, for CI or after upgrading phasegate."""
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    if not unit_tests:
        args += UNIT_TESTS_EXCLUDED
    return run_dbt(args, Path(cfg.project_dir), cfg.target, _vars(cfg, as_of), as_of=as_of)


def _vars(cfg: PhasegateConfig, as_of: date | None) -> dict | None:
    """The vars of a run. The evaluation date goes to dbt in the environment (run_dbt), so
    the vars stay the same from day to day; only a phasegate__as_of set in the config's
    dbt_vars, which the var would otherwise win over, is replaced here."""
    out = dict(cfg.dbt_vars)
    if cfg.source_schema:
        out["phasegate__source_schema"] = cfg.source_schema
    if as_of and "phasegate__as_of" in out:
        out["phasegate__as_of"] = as_of.isoformat()
    return out or None


def backfill(cfg: PhasegateConfig, start: date, end: date) -> int:
    """Evaluate every date from start to end in order (a state machine depends on the day
    before), then build everything as of `end`. Re-running a range rebuilds the same history:
    evaluating a date first removes the transitions on and after it."""
    if end < start:
        raise ConfigError(f"--end {end} is before --start {start}")
    project_dir = Path(cfg.project_dir)
    days = (end - start).days
    # Seeds, staging and daily activity through `end` (tested), then the transitions table
    # evaluating `start` (signals read the activity summary, so it is evaluated with them).
    as_of_models = "int_customer_activity_summarized phasegate__customer_signals"
    run_dbt(
        [
            "build",
            "--select",
            "+phasegate__customer_signals",
            "--exclude",
            as_of_models,
            *UNIT_TESTS_EXCLUDED,
        ],
        project_dir,
        cfg.target,
        _vars(cfg, end),
        as_of=end,
    )
    run_dbt(
        ["run", "--select", f"{as_of_models} phasegate__phase_transitions"],
        project_dir,
        cfg.target,
        _vars(cfg, start),
        as_of=start,
    )
    if days > 1:
        args = {"start_date": (start + timedelta(days=1)).isoformat(), "end_date": end.isoformat()}
        run_dbt(
            ["run-operation", "phasegate.backfill_phases", "--args", json.dumps(args)],
            project_dir,
            cfg.target,
            _vars(cfg, end),
            as_of=end,
        )
    build(cfg, end)
    return days + 1


@dataclass
class ActivationReport:
    """The outcome of an activation (or of a check, whose syncs are planned, never sent)."""

    run_id: str
    checks: list[CheckResult]
    syncs: list[SyncSummary] = field(default_factory=list)
    blocked: bool = False
    forced: bool = False
    # Why the run did not fully succeed: each sync that raised, and any block, in the order
    # they happened. The most severe is what an activation raises.
    errors: list[PhasegateError] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return most_severe([e.exit_code for e in self.errors] + [s.exit_code for s in self.syncs])

    def most_severe_error(self) -> PhasegateError | None:
        """The first of the most severe errors, carrying this report."""
        if not self.errors:
            return None
        worst = min(self.errors, key=lambda e: severity_rank(e.exit_code))
        worst.report = self
        return worst


def _latest_as_of(wh: Warehouse) -> date:
    rows = wh.query(f"select max(as_of_date) from {qualified(wh.schema, 'phasegate__phase_membership')}")
    if not rows or rows[0][0] is None:
        raise ConfigError("phase membership is empty; run `phasegate build` first")
    return rows[0][0]


def _invocation_id(project_dir: Path) -> str | None:
    path = target_dir(project_dir) / "run_results.json"
    if path.exists():
        return json.loads(path.read_text()).get("metadata", {}).get("invocation_id")
    return None


def check(cfg: PhasegateConfig, run_id: str | None = None) -> tuple[list[CheckResult], str]:
    """Every check `check_report` runs, as (results, run_id). A sync that could not be
    planned (its lock is held, its settings are wrong) raises the most severe such error,
    carrying the report, after the results are recorded."""
    report = check_report(cfg, run_id)
    error = report.most_severe_error()
    if error is not None:
        raise error
    return report.checks, report.run_id


def check_report(cfg: PhasegateConfig, run_id: str | None = None) -> ActivationReport:
    """The warehouse-wide checks, and each sync's payload suite on the plan it would send
    now: planned as a dry run (rolled back, so no delivery state, budget or held-back record
    changes, and nothing is sent). All results go to check_results under one run id.
    A sync that could not be planned is in `errors` with its exit code; the caller decides."""
    run_id = run_id or new_run_id("check")
    project_dir = Path(cfg.project_dir)
    wh = connect(project_dir, cfg.target)
    try:
        results = run_checks(cfg, wh)
        ledger = Ledger(wh, cfg.ops_schema)
        ledger.ensure()
        invocation = _invocation_id(project_dir)
        report = ActivationReport(run_id, results)
        if cfg.checks.payload.enabled and cfg.syncs:
            _plan_payload_checks(cfg, wh, ledger, report, invocation)
        ledger.record_checks(run_id, report.checks, invocation, cfg.config_hash())
    finally:
        wh.close()
    report.blocked = any(not r.passed for r in report.checks)
    return report


def _plan_payload_checks(
    cfg: PhasegateConfig, wh: Warehouse, ledger: Ledger, report: ActivationReport, invocation: str | None
) -> None:
    try:
        as_of = _latest_as_of(wh)
    except Exception as exc:  # noqa: BLE001 - a missing build fails the payload checks closed
        with contextlib.suppress(Exception):
            wh.rollback()
        report.checks += [_not_planned(s, exc) for s in cfg.syncs]
        return
    for s in cfg.syncs:
        summary = _run_isolated(
            cfg, wh, ledger, s, f"{report.run_id}_{s.name}", as_of, invocation, report, dry_run=True
        )
        report.checks += summary.checks


def _not_planned(sync: SyncConfig, why: Exception) -> CheckResult:
    reason = str(why).strip().splitlines()[0] if str(why).strip() else type(why).__name__
    return CheckResult(
        f"payload_expectations:{sync.name}",
        False,
        "check could not run",
        "check runs",
        f"sync '{sync.name}' could not be planned: {reason[:300]} (is the dbt build complete?)",
    )


def activate(
    cfg: PhasegateConfig,
    sync_names: list[str] | None = None,
    dry_run: bool = False,
    force: bool = False,
    reason: str | None = None,
    progress: bool = True,
    full_resync: bool = False,
    retry_rejected: bool = False,
) -> ActivationReport:
    """Run the checks, then every selected sync; if a check fails nothing is sent.

    Each sync runs on its own: one that fails (its destination down or refusing, its lock
    held, its settings wrong) is recorded and the next still runs. At the end the most
    severe problem is raised (errors.SEVERITY), carrying the report of every sync."""
    if force and not (reason and reason.strip()):
        raise ConfigError('--force needs --reason "why this override is safe"; it is recorded')
    syncs = [cfg.sync(n) for n in sync_names] if sync_names else list(cfg.syncs)
    if not syncs:
        raise ConfigError("no syncs configured; add a `syncs:` entry to phasegate.yml")
    run_id = new_run_id("sync")
    project_dir = Path(cfg.project_dir)
    wh = connect(project_dir, cfg.target)
    try:
        results = run_checks(cfg, wh)
        ledger = Ledger(wh, cfg.ops_schema)
        ledger.ensure()
        invocation = _invocation_id(project_dir)
        failed = [r for r in results if not r.passed]
        if failed and force:
            results.append(
                CheckResult(
                    "override",
                    True,
                    f"{len(failed)} failed check(s) overridden",
                    "--force with --reason",
                    f"forced: {reason}",
                )
            )
        ledger.record_checks(run_id, results, invocation, cfg.config_hash())
        blocked = bool(failed) and not force
        report = ActivationReport(run_id, results, blocked=blocked, forced=bool(failed) and force)
        as_of = _latest_as_of(wh)
        for s in syncs:
            _run_isolated(
                cfg,
                wh,
                ledger,
                s,
                f"{run_id}_{s.name}",
                as_of,
                invocation,
                report,
                dry_run=dry_run,
                blocked=blocked,
                progress=progress,
                full_resync=full_resync,
                retry_rejected=retry_rejected,
                override_reason=reason if force else None,
            )
    finally:
        wh.close()
    # Each sync's payload suite (and any override of it) shows with the warehouse-wide checks.
    report.checks.extend(c for s in report.syncs for c in s.checks)
    held = [s.sync for s in report.syncs if s.status == "blocked"]
    if report.blocked and not dry_run:
        report.errors.insert(0, BlockedError("a pre-activation check failed; nothing was sent", results))
    elif held and not dry_run:
        report.blocked = True
        report.errors.append(
            BlockedError(
                f"the payload checks of sync(s) {', '.join(held)} failed; nothing was sent to them", results
            )
        )
    error = report.most_severe_error()
    if error is not None:
        raise error
    return report


def _run_isolated(
    cfg: PhasegateConfig,
    wh: Warehouse,
    ledger: Ledger,
    sync: SyncConfig,
    run_id: str,
    as_of: date,
    invocation: str | None,
    report: ActivationReport,
    **options,
) -> SyncSummary:
    """One sync, whatever becomes of it: one destination's outage, refusal or held lock
    must not keep the others from running. What went wrong is kept on its summary (status
    `failed` or `locked`), in `report.errors`, and, unless planning only, in sync_runs."""
    summary = SyncSummary(sync=sync.name, run_id=run_id)
    report.syncs.append(summary)
    planning_only = bool(options.get("dry_run"))
    try:
        run_sync(cfg, wh, sync, run_id, as_of, invocation, summary=summary, **options)
    except Exception as exc:  # noqa: BLE001 - kept against this sync; the next sync runs
        if isinstance(exc, PhasegateError):
            error = exc
        elif planning_only:
            # Planning ran into the warehouse (a model missing after a failed build): like
            # any check that cannot run, the sync's payload check fails closed.
            with contextlib.suppress(Exception):
                wh.rollback()
            log.debug("sync %s could not be planned", sync.name, exc_info=True)
            summary.checks.append(_not_planned(sync, exc))
            summary.status, summary.error = "failed", summary.checks[-1].message
            summary.error_code = ExitCode.BLOCKED
            return summary
        else:
            log.error("sync %s failed unexpectedly", sync.name, exc_info=True)
            error = PhasegateError(
                f"sync '{sync.name}' failed unexpectedly: {type(exc).__name__}: {exc} "
                "(the traceback is in the log above; please report it)"
            )
        summary.status = "locked" if isinstance(exc, LockHeldError) else "failed"
        summary.error, summary.error_code = str(error), error.exit_code
        summary.reason = _short_reason(exc, summary.error)
        report.errors.append(error)
        try:
            # Postgres refuses further statements in an aborted transaction; nothing
            # uncommitted is worth keeping (every acknowledged batch committed on its own).
            wh.rollback()
            if not planning_only:
                ledger.settle_run(
                    run_id,
                    sync.name,
                    summary.status,
                    summary.counts(),
                    summary.error,
                    cfg.config_hash(),
                    invocation,
                    as_of,
                )
        except Exception:  # noqa: BLE001 - the sync's own error is what matters
            log.warning("sync %s: could not record its %s run", sync.name, summary.status, exc_info=True)
    return summary


def _short_reason(exc: Exception, error: str) -> str:
    if isinstance(exc, LockHeldError):
        return f"held by pid {exc.holder}"
    # The destination's own words; the full message (counts, the fix) is the error.
    if isinstance(exc, DestinationError) and isinstance(exc.__cause__, DestinationError):
        return str(exc.__cause__)
    return error


def phase_summary(cfg: PhasegateConfig) -> dict:
    """Phase sizes per journey and transitions on the latest evaluation date, for the CLI."""
    wh = connect(Path(cfg.project_dir), cfg.target, read_only=False)
    try:
        s = wh.schema
        sizes = wh.query(
            f"select journey, phase, count(*) from {qualified(s, 'phasegate__phase_membership')} "
            "group by 1, 2 order by 1, 3 desc"
        )
        as_of = _latest_as_of(wh)
        transitions = wh.query(
            f"select journey, coalesce(from_phase, '(new)'), to_phase, count(*) "
            f"from {qualified(s, 'phasegate__phase_transitions')} where transitioned_on > ? "
            "group by 1, 2, 3 order by 1, 4 desc",
            (as_of - timedelta(days=30),),
        )
        quarantined = wh.query(
            f"select quarantine_reason, count(*) from "
            f"{qualified(s, 'phasegate__quarantined_events')} group by 1 order by 2 desc"
        )
        return {
            "as_of": as_of,
            "sizes": sizes,
            "transitions": transitions,
            "quarantined": quarantined,
            "warehouse": wh.target.settings.get("path") or f"{wh.kind}:{wh.target.settings.get('dbname')}",
            "schema": s,
        }
    finally:
        wh.close()


def audit(cfg: PhasegateConfig, limit: int = 10, run_id: str | None = None) -> list[dict]:
    """Recent check and sync runs from the ledgers, newest first: when, config hash, dbt
    invocation, every check with its numbers and Great Expectations results, overrides
    with their reason, and each sync's counts (planned, sent, rejected, blocked, held back).
    An activation's per-sync runs (`<run_id>_<sync>`) are grouped under it."""
    if limit < 1:
        raise ConfigError("--limit must be at least 1")
    wh = connect(Path(cfg.project_dir), cfg.target, read_only=True)
    try:
        return _audit(wh, cfg.ops_schema, limit, run_id)
    finally:
        wh.close()


def _audit(wh: Warehouse, ops: str, limit: int, run_id: str | None) -> list[dict]:
    tables = {
        r[0]
        for r in wh.query("select table_name from information_schema.tables where table_schema = ?", (ops,))
    }
    if not {"check_results", "sync_runs"} <= tables:
        raise ConfigError(
            f"no ledgers in schema {ops} yet; run `phasegate check` or `phasegate sync` first "
            "(or point --config at the phasegate.yml whose ops_schema holds them)"
        )
    parent_of: dict[str, str] = {}
    first_seen: dict[str, object] = {}
    for rid, sync_name, started in wh.query(
        f"select run_id, sync_name, started_at from {qualified(ops, 'sync_runs')}"
    ):
        suffix = f"_{sync_name}"
        parent = rid[: -len(suffix)] if rid.endswith(suffix) else rid
        parent_of[rid] = parent
        first_seen[parent] = min(first_seen.get(parent, started), started)
    for rid, checked in wh.query(
        f"select run_id, min(checked_at) from {qualified(ops, 'check_results')} group by run_id"
    ):
        parent = parent_of.setdefault(rid, rid)
        first_seen[parent] = min(first_seen.get(parent, checked), checked)
    if run_id:
        if run_id not in parent_of and run_id not in first_seen:
            raise ConfigError(
                f"no run '{run_id}' in the ledgers of {ops}; `phasegate audit` lists recent runs"
            )
        chosen = [parent_of.get(run_id, run_id)]
    else:
        chosen = sorted(first_seen, key=lambda p: first_seen[p], reverse=True)[:limit]
    if not chosen:
        return []
    ids = [rid for rid, parent in parent_of.items() if parent in chosen] + chosen
    ids = sorted(set(ids))
    marks = ", ".join("?" for _ in ids)

    def rows(table: str, order: str) -> list[dict]:
        if table not in tables:
            return []
        cols, data = wh.query_with_columns(
            f"select * from {qualified(ops, table)} where run_id in ({marks}) order by {order}", ids
        )
        return [dict(zip(cols, r, strict=True)) for r in data]

    runs = {
        p: {
            "run_id": p,
            "kind": p.split("_", 1)[0],
            "started_at": first_seen[p],
            "config_hash": None,
            "dbt_invocation_id": None,
            "checks": [],
            "overrides": [],
            "syncs": [],
        }
        for p in chosen
    }
    gx: dict[tuple[str, str], list[dict]] = {}
    for g in rows("gx_results", "checked_at"):
        gx.setdefault((g["run_id"], g["check_name"]), []).append(_loaded(g, "details", "observed_value"))
    for c in rows("check_results", "checked_at"):
        run = runs[parent_of.get(c["run_id"], c["run_id"])]
        run["config_hash"] = run["config_hash"] or c.get("config_hash")
        run["dbt_invocation_id"] = run["dbt_invocation_id"] or c.get("dbt_invocation_id")
        c = _loaded(c, "details")
        c["gx"] = gx.get((c["run_id"], c["check_name"]), [])
        if c["check_name"] == "override":
            run["overrides"].append(
                {
                    "run_id": c["run_id"],
                    "overridden": c["observed"],
                    "reason": c["message"].removeprefix("forced: "),
                }
            )
        else:
            run["checks"].append(c)
    for srow in rows("sync_runs", "started_at"):
        run = runs[parent_of[srow["run_id"]]]
        run["config_hash"] = run["config_hash"] or srow.get("config_hash")
        run["dbt_invocation_id"] = run["dbt_invocation_id"] or srow.get("dbt_invocation_id")
        run["syncs"].append(_loaded(srow, "held_back"))
    return [runs[p] for p in chosen]


def _loaded(row: dict, *json_cols: str) -> dict:
    out = dict(row)
    for c in json_cols:
        if isinstance(out.get(c), str):
            with contextlib.suppress(ValueError):
                out[c] = json.loads(out[c])
    return out
