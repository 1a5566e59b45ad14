"""Pre-activation checks. Each returns a CheckResult; any failure blocks every sync, and
the result says what was observed, what was allowed, and shows failing rows."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from phasegate.config import PhasegateConfig
from phasegate.dbt_runner import target_dir
from phasegate.warehouse import Warehouse, qualified

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    name: str
    passed: bool
    observed: object
    allowed: object
    message: str
    samples: list[dict] = field(default_factory=list)


def check_dbt_build(project_dir: Path) -> CheckResult:
    """The last dbt invocation must be a build whose models and tests all passed."""
    path = target_dir(project_dir) / "run_results.json"
    name = "dbt_build_passed"
    if not path.exists():
        return CheckResult(
            name,
            False,
            "no run_results.json",
            "a passing dbt build",
            f"no dbt results at {path}; run `phasegate build` first",
        )
    results = json.loads(path.read_text())
    command = results.get("args", {}).get("which")
    nodes = results.get("results", [])
    failed = [r for r in nodes if r.get("status") not in ("success", "pass", "warn", "skipped", "no-op")]
    tests = [r for r in nodes if r.get("unique_id", "").startswith("test.")]
    if command != "build" or not tests:
        return CheckResult(
            name,
            False,
            f"last dbt command: {command} ({len(tests)} tests)",
            "dbt build with tests",
            "the last dbt invocation did not run the data tests; run `phasegate build` so the "
            "data being activated has been tested",
        )
    if failed:
        samples = [
            {
                "node": r.get("unique_id"),
                "status": r.get("status"),
                "failures": r.get("failures"),
                "message": (r.get("message") or "")[:300],
            }
            for r in failed[:5]
        ]
        return CheckResult(
            name,
            False,
            f"{len(failed)} failed",
            "0 failed",
            f"{len(failed)} dbt node(s) failed in the last build",
            samples,
        )
    return CheckResult(
        name,
        True,
        f"{len(nodes)} nodes, {len(tests)} tests passed",
        "0 failed",
        "last dbt build passed",
    )


def check_membership_expectations(wh: Warehouse) -> CheckResult:
    """Great Expectations suite over current phase membership (validated as a DataFrame,
    which works on every warehouse)."""
    import great_expectations as gx

    schema = wh.schema
    frame = wh.query_df(
        "select membership_id, journey, customer_id, phase "
        f"from {qualified(schema, 'phasegate__phase_membership')}"
    )
    phases = wh.query(f"select journey, phase from {qualified(schema, 'phasegate__journey_phases')}")
    frame["journey_phase"] = frame["journey"].astype(str) + "." + frame["phase"].astype(str)
    allowed = sorted(f"{j}.{p}" for j, p in phases)

    ctx = gx.get_context(mode="ephemeral")
    batch = (
        ctx.data_sources.add_pandas("phasegate")
        .add_dataframe_asset("phase_membership")
        .add_batch_definition_whole_dataframe("current")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = ctx.suites.add(gx.ExpectationSuite(name="phasegate_membership"))
    e = gx.expectations
    suite.add_expectation(e.ExpectTableRowCountToBeBetween(min_value=1))
    for col in ("membership_id", "journey", "customer_id", "phase"):
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=col))
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column="membership_id"))
    suite.add_expectation(e.ExpectCompoundColumnsToBeUnique(column_list=["journey", "customer_id"]))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="journey_phase", value_set=allowed))
    result = batch.validate(suite, result_format="SUMMARY")
    failures = []
    for r in result.results:
        if not r.success:
            cfg = r.expectation_config
            failures.append(
                {
                    "expectation": cfg.type,
                    "column": cfg.kwargs.get("column") or cfg.kwargs.get("column_list"),
                    "unexpected_count": r.result.get("unexpected_count"),
                    "sample": [str(v) for v in (r.result.get("partial_unexpected_list") or [])[:5]],
                }
            )
    n = len(result.results)
    return CheckResult(
        "membership_expectations",
        result.success,
        f"{n - len(failures)}/{n} expectations met",
        f"{n}/{n}",
        "Great Expectations suite on phase membership "
        + ("passed" if result.success else f"failed {len(failures)} expectation(s)"),
        failures,
    )


def check_blast_radius(wh: Warehouse, max_share: float) -> CheckResult:
    """Block when too many customers change phase on one evaluation date: the signature of
    a broken join or an emptied source rather than of customer behaviour."""
    s = wh.schema
    rows = wh.query(f"""
        with latest as (select max(transitioned_on) as d from {qualified(s, "phasegate__phase_transitions")})
        select m.journey, count(*) as customers,
               sum(case when t.transition_id is not null then 1 else 0 end) as changed
        from {qualified(s, "phasegate__phase_membership")} as m
        left join {qualified(s, "phasegate__phase_transitions")} as t
          on t.journey = m.journey and t.customer_id = m.customer_id
         and t.transitioned_on = (select d from latest) and t.from_phase is not null
        group by m.journey order by m.journey""")
    worst = max(
        ((j, c, ch, (ch or 0) / c if c else 0.0) for j, c, ch in rows),
        key=lambda r: r[3],
        default=("-", 0, 0, 0.0),
    )
    samples = [
        {"journey": j, "customers": c, "changed": ch, "share": round((ch or 0) / c, 4)}
        for j, c, ch in rows
        if c
    ]
    passed = worst[3] <= max_share
    return CheckResult(
        "blast_radius",
        passed,
        f"{worst[3]:.1%} of '{worst[0]}' changed phase",
        f"<= {max_share:.1%}",
        "share of customers changing phase in the latest evaluation"
        + ("" if passed else ' is above the limit; if this is expected, rerun with --force --reason "..."'),
        samples,
    )


def check_quarantine_share(wh: Warehouse, max_share: float) -> CheckResult:
    s = wh.schema
    ((quarantined,),) = wh.query(f"select count(*) from {qualified(s, 'phasegate__quarantined_events')}")
    ((total,),) = wh.query(f"select count(*) from {qualified(s, 'int_events_unioned')}")
    share = quarantined / total if total else 0.0
    reasons = wh.query(
        f"select quarantine_reason, count(*) from {qualified(s, 'phasegate__quarantined_events')} "
        "group by 1 order by 2 desc"
    )
    passed = total > 0 and share <= max_share
    msg = (
        "no source events at all: the events source is empty"
        if total == 0
        else "share of source events quarantined (not counted by signals)"
    )
    return CheckResult(
        "quarantined_events",
        passed,
        f"{share:.2%} ({quarantined} of {total})",
        f"<= {max_share:.0%}",
        msg,
        [{"reason": r, "events": n} for r, n in reasons],
    )


def _guarded(name: str, fn, *args) -> CheckResult:
    """A check that cannot run (a missing table after a failed build, a lost connection)
    fails closed: it blocks, and says why."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - any error in a gate must block, not crash
        log.debug("check %s raised", name, exc_info=True)
        for arg in args:
            if isinstance(arg, Warehouse):
                with contextlib.suppress(Exception):
                    arg.rollback()  # Postgres refuses further statements in an aborted transaction
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return CheckResult(
            name,
            False,
            "check could not run",
            "check runs",
            f"{type(exc).__name__}: {first_line[:300]} (is the dbt build complete?)",
        )


def run_checks(cfg: PhasegateConfig, wh: Warehouse) -> list[CheckResult]:
    project_dir = Path(cfg.project_dir)
    results: list[CheckResult] = []
    if cfg.checks.require_dbt_tests:
        results.append(_guarded("dbt_build_passed", check_dbt_build, project_dir))
    if cfg.checks.great_expectations:
        results.append(_guarded("membership_expectations", check_membership_expectations, wh))
    results.append(_guarded("blast_radius", check_blast_radius, wh, cfg.checks.max_changed_share))
    results.append(
        _guarded("quarantined_events", check_quarantine_share, wh, cfg.checks.max_quarantined_share)
    )
    for r in results:
        log.info(
            "check %s: %s (%s; allowed %s)", r.name, "pass" if r.passed else "FAIL", r.observed, r.allowed
        )
    return results
