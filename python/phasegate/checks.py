"""Pre-activation checks. Each returns a CheckResult; a failure of a warehouse-wide check
blocks every sync, a failure of a sync's payload suite blocks that sync, and the result says
what was observed, what was allowed, and shows failing rows."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from phasegate.config import FreshnessCheck, PhasegateConfig, SyncConfig, TrailingBlastRadius
from phasegate.dbt_runner import target_dir
from phasegate.warehouse import Warehouse, qualified

if TYPE_CHECKING:
    import pandas as pd

    from phasegate.ledger import Ledger

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    name: str
    passed: bool
    observed: object
    allowed: object
    message: str
    samples: list[dict] = field(default_factory=list)
    # Great Expectations validation results, one dict per expectation (kept in gx_results).
    gx: list[dict] = field(default_factory=list)


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

    ctx = _gx_context()
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
        gx=_gx_rows("phasegate_membership", result),
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


def check_source_freshness(
    wh: Warehouse, fresh: FreshnessCheck, project_dir: Path, now: datetime | None = None
) -> CheckResult:
    """Block when the newest source event was received too long before the reference time:
    a stopped loader leaves yesterday's phases in place, and syncing them re-sends stale
    decisions as if they were news."""
    name = "source_freshness"
    s = wh.schema
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    ((as_of,),) = wh.query(f"select max(as_of_date) from {qualified(s, 'phasegate__phase_membership')}")
    if fresh.relative_to == "now" or as_of is None:
        reference = now
    else:
        # End of the evaluated day, capped at now: a backfill of an old date is judged by the
        # data it had then, and today's build by the data received so far.
        reference = min(now, datetime.combine(as_of + timedelta(days=1), time()))
    events = qualified(s, "int_events_unioned")
    rows = wh.query(
        f"select event_source, max(case when received_at <= ? then received_at end), count(*) "
        f"from {events} group by event_source order by event_source",
        (reference,),
    )
    relations = _event_relations(project_dir)
    allowed = f"<= {fresh.max_age_hours:g} h before {reference:%Y-%m-%d %H:%M} UTC ({fresh.relative_to})"
    if not rows:
        where = ", ".join(sorted(set(relations.values()))) or events
        return CheckResult(
            name,
            False,
            "no source events at all",
            allowed,
            f"the events source is empty ({where}); load the source data before activating",
        )
    samples = []
    for source, newest, n in rows:
        newest = _naive_utc(newest)
        age = (reference - newest).total_seconds() / 3600 if newest is not None else None
        samples.append(
            {
                "source": source,
                "relation": relations.get(source, f"{events} (event_source '{source}')"),
                "newest_received_at": newest.isoformat(sep=" ", timespec="seconds") if newest else None,
                "age_hours": round(age, 1) if age is not None else None,
                "events": n,
            }
        )
    stale = [x for x in samples if x["age_hours"] is None or x["age_hours"] > fresh.max_age_hours]
    samples = stale + [x for x in samples if x not in stale]
    worst = stale[0] if stale else max(samples, key=lambda x: x["age_hours"])
    observed = (
        f"{worst['relation']}: newest event received {worst['newest_received_at']} "
        f"({worst['age_hours']} h before the reference)"
        if worst["newest_received_at"]
        else f"{worst['relation']}: no event received by the reference time"
    )
    if not stale:
        return CheckResult(name, True, observed, allowed, "source events are fresh", samples)
    return CheckResult(
        name,
        False,
        observed,
        allowed,
        f"{worst['relation']} is stale: its loader has stopped or is late. Fix the load and "
        "rebuild; for a backfill, evaluate the date the data reaches (--as-of); for a source "
        "that lands less often, raise checks.freshness.max_age_hours",
        samples,
    )


def _naive_utc(ts: datetime | None) -> datetime | None:
    if ts is not None and ts.tzinfo is not None:
        return ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts


def _event_relations(project_dir: Path) -> dict[str, str]:
    """event_source values of int_events_unioned -> the source relation they come from, from
    dbt's manifest (best effort: the error message is clearer with the real table name)."""
    try:
        sources = json.loads((target_dir(project_dir) / "manifest.json").read_text()).get("sources", {})
    except (OSError, ValueError):
        return {}
    by_name = {(v.get("source_name"), v.get("name")): v.get("relation_name") for v in sources.values()}
    wanted = {"phasegate": ("phasegate", "events")}
    wanted.update({f"segment_{t}": ("segment", t) for t in ("tracks", "pages", "screens")})
    return {src: by_name[key] for src, key in wanted.items() if by_name.get(key)}


def check_blast_radius_trailing(wh: Warehouse, t: TrailingBlastRadius) -> CheckResult:
    """Block when the latest evaluation date departs from the journey's own recent history:
    the share of customers changing phase, or any phase's size change, above `multiplier` x
    the median of the previous `window_days` dates. Catches a broken join that moves 10% of
    a journey whose normal day moves 1% — well under any sane absolute limit."""
    name = "blast_radius_trailing"
    s = wh.schema
    totals: dict[str, dict] = {}
    sizes: dict[tuple[str, str], dict] = {}
    for j, p, day, n in wh.query(
        f"select journey, phase, day, customers from {qualified(s, 'phasegate__phase_sizes_daily')}"
    ):
        sizes.setdefault((j, p), {})[day] = n or 0
        totals.setdefault(j, {})
        totals[j][day] = totals[j].get(day, 0) + (n or 0)
    changed = {
        (j, d): n
        for j, d, n in wh.query(
            f"select journey, transitioned_on, count(*) from {qualified(s, 'phasegate__phase_transitions')} "
            "where from_phase is not null group by journey, transitioned_on"
        )
    }
    allowed = (
        f"<= {t.multiplier:g}x the median of the previous {t.window_days} evaluation dates "
        f"(never below {t.min_share:.0%} of the journey)"
    )
    samples: list[dict] = []
    waiting: list[str] = []
    for j, by_day in sorted(totals.items()):
        days = sorted(by_day)
        # The first date places every customer: a baseline, not a change.
        evaluated = days[1:]
        history = evaluated[:-1][-t.window_days :]
        if len(history) < t.min_history_days:
            waiting.append(f"'{j}' has {len(history)} of {t.min_history_days} dates")
            continue
        latest, base = evaluated[-1], by_day[evaluated[-1]]
        share = [changed.get((j, d), 0) / by_day[d] if by_day[d] else 0.0 for d in [*history, latest]]
        med = statistics.median(share[:-1])
        limit = max(t.multiplier * med, t.min_share)
        samples.append(_trail_sample(j, "(all)", "changed_share", latest, share[-1], med, limit, 4))
        floor = t.min_share * base
        for (jj, p), series in sorted(sizes.items()):
            if jj != j:
                continue
            delta = [
                abs(series.get(d, 0) - series.get(days[days.index(d) - 1], 0)) for d in [*history, latest]
            ]
            med = statistics.median(delta[:-1])
            samples.append(
                _trail_sample(j, p, "size_change", latest, delta[-1], med, max(t.multiplier * med, floor), 1)
            )
    if not samples:
        return CheckResult(
            name,
            True,
            "not enough history yet",
            allowed,
            f"applies once {t.min_history_days} earlier evaluation dates exist ({'; '.join(waiting)})",
        )
    # Most severe first: the ratio of observed to allowed.
    samples.sort(key=_severity, reverse=True)
    failing = [x for x in samples if not x["passed"]]
    ranked = failing or samples
    w = ranked[0]
    what = (
        "customers changing phase" if w["metric"] == "changed_share" else f"phase '{w['phase']}' size change"
    )
    observed = (
        f"'{w['journey']}' {what} on {w['date']}: {w['observed']} "
        f"(trailing median {w['trailing_median']}, allowed {w['allowed']})"
    )
    if not failing:
        return CheckResult(
            name,
            True,
            observed,
            allowed,
            "the latest evaluation is in line with the trailing history",
            ranked[:5],
        )
    return CheckResult(
        name,
        False,
        observed,
        allowed,
        f"{len(failing)} journey/phase change(s) far above the trailing history: the signature of "
        "a broken join or an emptied source. Fix the data and rebuild; if the change is real "
        '(a planned migration), rerun with --force --reason "..."; tune checks.trailing_blast_radius',
        failing + [x for x in samples if x["passed"]][: max(0, 5 - len(failing))],
    )


def _severity(sample: dict) -> float:
    if sample["allowed"]:
        return sample["observed"] / sample["allowed"]
    return float("inf") if sample["observed"] else 0.0


def _trail_sample(journey, phase, metric, day, observed, median, allowed, digits) -> dict:
    return {
        "journey": journey,
        "phase": phase,
        "metric": metric,
        "date": str(day),
        "observed": round(observed, digits),
        "trailing_median": round(median, digits),
        "allowed": round(allowed, digits),
        "passed": observed <= allowed,
    }


# --- Great Expectations on what a sync is about to send ---------------------------------

IDENTIFIERS = ("email", "phone")
ATTRIBUTE_PLAN_KEYS = ("seq", "record_id", "op", "record_key", "fingerprint")
EVENT_PLAN_COLUMNS = ("seq", "record_id", "record_key", "event_name", "journey", "phase", "occurred_on")


def _gx_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    # Metric progress bars would interleave with the sync's own progress on stderr.
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _validate(suite_name: str, frame: pd.DataFrame, expectations: list):
    import great_expectations as gx

    ctx = _gx_context()
    batch = (
        ctx.data_sources.add_pandas("phasegate")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("plan")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = ctx.suites.add(gx.ExpectationSuite(name=suite_name))
    for e in expectations:
        suite.add_expectation(e)
    return batch.validate(suite, result_format="SUMMARY")


def _gx_error(r) -> str | None:
    info = r.exception_info or {}
    candidates = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for c in candidates:
        if c.get("raised_exception"):
            return str(c.get("exception_message") or "expectation raised")[:300]
    return None


def _gx_rows(suite_name: str, result, redact: tuple[str, ...] = ()) -> list[dict]:
    """One dict per expectation: what the gx_results ledger keeps. Values of `redact`
    columns (contact identifiers) are never kept, only counts."""
    rows = []
    for r in result.results:
        cfg = r.expectation_config
        kwargs = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
        column = kwargs.get("column") or kwargs.get("column_list")
        res = dict(r.result or {})
        sample = (
            [] if column in redact else [str(v)[:80] for v in (res.get("partial_unexpected_list") or [])[:10]]
        )
        rows.append(
            {
                "suite": suite_name,
                "expectation": cfg.type,
                "column": column if isinstance(column, str) or column is None else ",".join(column),
                "success": bool(r.success),
                "element_count": res.get("element_count"),
                "unexpected_count": res.get("unexpected_count"),
                "unexpected_percent": res.get("unexpected_percent"),
                "observed_value": res.get("observed_value"),
                "details": {
                    "kwargs": json.loads(json.dumps(kwargs, default=str)),
                    "sample": sample,
                    "error": _gx_error(r),
                    **(cfg.meta or {}),
                },
            }
        )
    return rows


def _identifiers_as_sent(
    frame: pd.DataFrame, identifiers: list[str], patterns: dict[str, str], region: str | None
) -> dict[str, list]:
    """Replaces each identifier column with the value the destination would send: trimmed,
    and normalised by the destination's own normaliser (email syntax and case; phone to E.164
    with the destination's default region) when the raw value does not already match the
    pattern. A value the normaliser rejects stays as it was, so the pattern judges it.
    Returns the record keys (never the values) of a few failing rows per column."""
    from phasegate.destinations.identity import InvalidIdentity, normalize_email, normalize_phone

    bad_keys: dict[str, list] = {}
    for col in identifiers:
        if col not in frame.columns:
            continue
        pattern = re.compile(patterns[col])

        def as_sent(v, col=col, pattern=pattern):
            if v is None or (isinstance(v, float) and v != v):
                return None
            text = str(v).strip()
            if not text or pattern.search(text):
                return text or None
            try:
                return normalize_email(text) if col == "email" else normalize_phone(text, region)
            except InvalidIdentity:
                return text

        frame[col] = frame[col].map(as_sent).astype(object)
        bad = frame[col].map(lambda v, p=pattern: v is not None and v == v and not p.search(v))
        bad_keys[col] = [str(k) for k in frame.loc[bad.astype(bool), "record_key"].head(5)]
    return bad_keys


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Decimal columns (Postgres numeric, DuckDB decimal) as floats, so range expectations compare."""
    from decimal import Decimal

    for c in frame.columns:
        if frame[c].dtype == object:
            first = frame[c].dropna().head(1)
            if len(first) and isinstance(first.iloc[0], Decimal):
                frame[c] = frame[c].astype(float)
    return frame


def _meta(field: str, fix: str) -> dict:
    return {"field": field, "fix": fix}


def _payload_expectations(
    frame: pd.DataFrame,
    required: list[str],
    not_null: list[str],
    unique: list[str],
    in_sets: dict[str, list],
    sync: SyncConfig,
    cfg: PhasegateConfig,
) -> list:
    from great_expectations import expectations as gxe

    pc = cfg.checks.payload
    present = set(frame.columns)
    out = []
    for c in required:
        out.append(
            gxe.ExpectColumnToExist(
                column=c,
                meta=_meta(
                    f"plan column {c}",
                    f"sync '{sync.name}' plans no {c} column; rebuild (`phasegate build`) so the "
                    "marts match this version, or report a bug",
                ),
            )
        )
    for c in not_null:
        if c in present:
            out.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=c,
                    meta=_meta(
                        c,
                        "a null key upstream: check customer_id in int_customers_unioned and the "
                        "customers source, then rebuild",
                    ),
                )
            )
    for c in unique:
        if c in present:
            out.append(
                gxe.ExpectColumnValuesToBeUnique(
                    column=c,
                    meta=_meta(
                        c,
                        "duplicate keys: a join fans out (a customer_id appears more than once in "
                        "int_customers_unioned, phasegate__customer_signals or phase membership); "
                        "deduplicate the source and rebuild",
                    ),
                )
            )
    for c, values in in_sets.items():
        if c in present:
            out.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=c,
                    value_set=values,
                    meta=_meta(
                        c,
                        "a value outside the configured set: rebuild (`phasegate build`) after "
                        "changing phasegate__journeys or the sync's events",
                    ),
                )
            )
    for c in sync.identifiers:
        fmt = getattr(pc, c)
        if c in present:
            # GX's `mostly` is a share; the tolerated count becomes one for this plan's size.
            n = int(frame[c].notna().sum())
            tolerated = max(fmt.max_invalid_share, fmt.tolerated_count / n if n else 0.0)
            out.append(
                gxe.ExpectColumnValuesToMatchRegex(
                    column=c,
                    regex=fmt.pattern,
                    mostly=round(max(0.0, 1 - tolerated), 6),
                    meta=_meta(
                        f"checks.payload.{c}",
                        f"more than {fmt.max_invalid_share:.0%} of {c} values are invalid as the "
                        f"destination would send them; fix the source's {c} column, or raise "
                        f"checks.payload.{c}.max_invalid_share",
                    ),
                )
            )
    return out


def _column_expectations(frame: pd.DataFrame, sync: SyncConfig, cfg: PhasegateConfig) -> list:
    """The `checks.payload.columns` expectations that apply to this sync, on upserts (a
    remove carries no attributes by design)."""
    from great_expectations import expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    out = []
    for col, exp in cfg.checks.payload.columns.items():
        if exp.syncs and sync.name not in exp.syncs:
            continue
        field_ = f"checks.payload.columns.{col}"
        if col not in frame.columns:
            out.append(
                gxe.ExpectColumnToExist(
                    column=col,
                    meta=_meta(
                        field_,
                        f"'{col}' is not in sync '{sync.name}''s payload (columns: "
                        f"{', '.join(c for c in frame.columns if c not in ATTRIBUTE_PLAN_KEYS)}); "
                        f"fix the name, or list the syncs that carry it in {field_}.syncs",
                    ),
                )
            )
            continue
        common = {"column": col, "mostly": exp.mostly, "row_condition": Column("op") == "upsert"}
        fix = f"fix the data upstream, or the expectation in phasegate.yml ({field_})"
        if exp.not_null:
            out.append(gxe.ExpectColumnValuesToNotBeNull(**common, meta=_meta(f"{field_}.not_null", fix)))
        if exp.unique:
            out.append(gxe.ExpectColumnValuesToBeUnique(**common, meta=_meta(f"{field_}.unique", fix)))
        if exp.in_set is not None:
            out.append(
                gxe.ExpectColumnValuesToBeInSet(
                    **common, value_set=exp.in_set, meta=_meta(f"{field_}.in_set", fix)
                )
            )
        if exp.between is not None:
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    **common,
                    min_value=exp.between[0],
                    max_value=exp.between[1],
                    meta=_meta(f"{field_}.between", fix),
                )
            )
        if exp.regex is not None:
            out.append(
                gxe.ExpectColumnValuesToMatchRegex(
                    **common, regex=exp.regex, meta=_meta(f"{field_}.regex", fix)
                )
            )
    return out


def check_payload(
    wh: Warehouse,
    plan_table: str,
    sync: SyncConfig,
    cfg: PhasegateConfig,
    event_table: str | None = None,
) -> CheckResult:
    """Great Expectations suites on what one sync is about to send: its attribute plan and,
    when it sends events, its event plan.

    Validated as pandas DataFrames on every warehouse, not through GX's SQL datasource:
    that datasource returns nothing on DuckDB, the identifier columns must first pass
    through the destinations' own normalisers (Python), and one code path keeps the
    results identical on DuckDB and Postgres. A plan holds only what changed, so it is
    small after the first sync."""
    from great_expectations import expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    pc = cfg.checks.payload
    name = f"payload_expectations:{sync.name}"
    phases: dict[str, list[str]] = {}
    for j, p in wh.query(f"select journey, phase from {qualified(wh.schema, 'phasegate__journey_phases')}"):
        phases.setdefault(j, []).append(p)
    journeys = sync.journeys or sorted(phases)
    region = getattr(sync.destination, "default_phone_region", None)
    patterns = {c: getattr(pc, c).pattern for c in IDENTIFIERS}
    ids = list(sync.identifiers)

    attrs = _numeric(wh.query_df(f"select * from {plan_table}"))
    bad_keys = _identifiers_as_sent(attrs, ids, patterns, region)
    phase_cols = {f"{j}_phase": sorted(phases.get(j, [])) for j in journeys}
    required = [*ATTRIBUTE_PLAN_KEYS]
    required += [c for j in journeys for c in (f"{j}_phase", f"{j}_phase_entered_on")]
    required += [*sync.fields, *ids]
    exps = _payload_expectations(
        attrs,
        required,
        ["record_id", "record_key", "op", "fingerprint"],
        ["record_id", "record_key"],
        phase_cols,
        sync,
        cfg,
    )
    exps.append(
        gxe.ExpectTableRowCountToBeBetween(
            min_value=pc.min_rows,
            meta=_meta("checks.payload.min_rows", "fewer records planned than required; check the build"),
        )
    )
    if len(journeys) == 1 and f"{journeys[0]}_phase" in attrs.columns:
        exps.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=f"{journeys[0]}_phase",
                row_condition=Column("op") == "upsert",
                meta=_meta(f"{journeys[0]}_phase", "an upsert without a phase: rebuild the phase marts"),
            )
        )
    exps += _column_expectations(attrs, sync, cfg)
    suites = [(f"payload_{sync.name}", "attributes", attrs, exps, dict(bad_keys))]

    if event_table:
        events = wh.query_df(f"select * from {event_table}")
        ev_bad = _identifiers_as_sent(events, ids, patterns, region)
        if {"journey", "phase"} <= set(events.columns):
            events["journey_phase"] = events["journey"].astype(str) + "." + events["phase"].astype(str)
        allowed_jp = sorted(f"{j}.{p}" for j in journeys for p in phases.get(j, []))
        ev_exps = _payload_expectations(
            events,
            [*EVENT_PLAN_COLUMNS, *ids],
            ["record_id", "record_key", "event_name", "journey", "phase"],
            ["record_id"],
            {"event_name": sorted({sync.events.entered, sync.events.exited}), "journey_phase": allowed_jp},
            sync,
            cfg,
        )
        suites.append((f"payload_events_{sync.name}", "events", events, ev_exps, ev_bad))

    gx_rows: list[dict] = []
    failures: list[dict] = []
    total = 0
    for suite_name, label, frame, expectations, keys in suites:
        result = _validate(suite_name, frame, expectations)
        rows = _gx_rows(suite_name, result, redact=IDENTIFIERS)
        gx_rows += rows
        total += len(rows)
        for row in rows:
            if row["success"]:
                continue
            col = row["column"]
            failures.append(
                {
                    "plan": label,
                    "expectation": row["expectation"],
                    "field": row["details"].get("field"),
                    "unexpected": row["unexpected_count"],
                    # GX's share: of the non-null values for value expectations.
                    "share": None
                    if row["unexpected_percent"] is None
                    else round(row["unexpected_percent"] / 100, 4),
                    "of": row["element_count"],
                    "observed": row["observed_value"],
                    "fix": row["details"].get("fix"),
                    "sample": keys.get(col) if col in IDENTIFIERS else row["details"]["sample"][:5],
                    **({"error": row["details"]["error"]} if row["details"].get("error") else {}),
                }
            )
    rows_planned = f"{len(attrs)} record(s)" + (f" and {len(suites[1][2])} event(s)" if event_table else "")
    if not failures:
        return CheckResult(
            name,
            True,
            f"{total}/{total} expectations met on {rows_planned}",
            f"{total}/{total}",
            f"sync '{sync.name}': the payload passed its Great Expectations suite",
            gx=gx_rows,
        )
    first = failures[0]
    short = "; ".join(_short_failure(f) for f in failures[:4])
    return CheckResult(
        name,
        False,
        f"{len(failures)} of {total} expectations failed: {short}",
        f"{total}/{total}",
        f"sync '{sync.name}' is blocked (nothing was sent to it): {first['field']}: {first['fix']}",
        failures,
        gx=gx_rows,
    )


def _short_failure(f: dict) -> str:
    what = f"{f['plan']} {f['field']} ({f['expectation'].removeprefix('expect_')})"
    if f.get("error"):
        return f"{what}: could not run ({f['error'][:80]})"
    if f["unexpected"] is not None and f["share"] is not None:
        return f"{what}: {f['unexpected']} of {f['of']} rows ({f['share']:.1%} of non-null values)"
    if f["observed"] is not None:
        return f"{what}: observed {f['observed']}"
    return f"{what}: missing"


def payload_gate(
    cfg: PhasegateConfig,
    wh: Warehouse,
    ledger: Ledger,
    planner,
    sync: SyncConfig,
    run_id: str,
    invocation: str | None,
    override_reason: str | None = None,
    record: bool = True,
) -> tuple[list[CheckResult], bool]:
    """Runs the payload suite on a sync's freshly built plan; returns the results and
    whether the sync must be blocked. `override_reason` (from --force --reason) lets a
    failed suite through, recorded as an override. A dry run records nothing (its plan is
    rolled back)."""
    if not cfg.checks.payload.enabled:
        return [], False
    name = f"payload_expectations:{sync.name}"
    event_plan = planner.event_plan if planner.send_events else None
    result = _guarded(name, check_payload, wh, planner.attr_plan, sync, cfg, event_plan)
    results = [result]
    if not result.passed and override_reason:
        results.append(
            CheckResult(
                "override", True, f"{name} overridden", "--force with --reason", f"forced: {override_reason}"
            )
        )
    log.info(
        "check %s: %s (%s; allowed %s)",
        name,
        "pass" if result.passed else "FAIL",
        result.observed,
        result.allowed,
    )
    if record:
        ledger.record_checks(run_id, results, invocation, cfg.config_hash())
    return results, not result.passed and not override_reason


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
    if cfg.checks.trailing_blast_radius.enabled:
        results.append(
            _guarded(
                "blast_radius_trailing", check_blast_radius_trailing, wh, cfg.checks.trailing_blast_radius
            )
        )
    results.append(
        _guarded("quarantined_events", check_quarantine_share, wh, cfg.checks.max_quarantined_share)
    )
    if cfg.checks.freshness.enabled:
        results.append(
            _guarded("source_freshness", check_source_freshness, wh, cfg.checks.freshness, project_dir)
        )
    for r in results:
        log.info(
            "check %s: %s (%s; allowed %s)", r.name, "pass" if r.passed else "FAIL", r.observed, r.allowed
        )
    return results
