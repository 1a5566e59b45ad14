"""Great Expectations: the suite on current phase membership, and the helpers every
suite validates with (an ephemeral context, results as gx_results rows)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from phasegate.checks.results import CheckResult
from phasegate.warehouse import Warehouse, qualified

if TYPE_CHECKING:
    import pandas as pd


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
