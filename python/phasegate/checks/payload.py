"""Great Expectations on what a sync is about to send: its attribute and event plans,
with identifiers judged as the destination would send them."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from phasegate.checks.expectations import _gx_rows, _validate
from phasegate.checks.results import CheckResult, _guarded
from phasegate.config import PhasegateConfig, SyncConfig
from phasegate.warehouse import Warehouse, qualified

if TYPE_CHECKING:
    import pandas as pd

    from phasegate.ledger import Ledger

log = logging.getLogger(__name__)

IDENTIFIERS = ("email", "phone")
ATTRIBUTE_PLAN_KEYS = ("seq", "record_id", "op", "record_key", "fingerprint")
EVENT_PLAN_COLUMNS = ("seq", "record_id", "record_key", "event_name", "journey", "phase", "occurred_on")


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
