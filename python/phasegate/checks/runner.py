"""Runs the warehouse-wide checks in order; a failure of any blocks every sync."""

from __future__ import annotations

import logging
from pathlib import Path

from phasegate.checks.blast_radius import check_blast_radius, check_blast_radius_trailing
from phasegate.checks.dbt_results import check_dbt_build
from phasegate.checks.expectations import check_membership_expectations
from phasegate.checks.freshness import check_source_freshness
from phasegate.checks.quarantine import check_quarantine_share
from phasegate.checks.results import CheckResult, _guarded
from phasegate.config import PhasegateConfig
from phasegate.warehouse import Warehouse

log = logging.getLogger(__name__)


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
