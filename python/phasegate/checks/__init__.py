"""Pre-activation checks. Each returns a CheckResult; a failure of a warehouse-wide check
blocks every sync, a failure of a sync's payload suite blocks that sync, and the result says
what was observed, what was allowed, and shows failing rows.

The checks live in modules named for what they judge; the names below are the package's
interface, so callers import from `phasegate.checks` and not from the modules."""

from phasegate.checks.blast_radius import check_blast_radius, check_blast_radius_trailing
from phasegate.checks.dbt_results import check_dbt_build
from phasegate.checks.expectations import check_membership_expectations
from phasegate.checks.freshness import check_source_freshness
from phasegate.checks.payload import check_payload, payload_gate
from phasegate.checks.quarantine import check_quarantine_share
from phasegate.checks.results import CheckResult
from phasegate.checks.runner import run_checks

__all__ = [
    "CheckResult",
    "check_blast_radius",
    "check_blast_radius_trailing",
    "check_dbt_build",
    "check_membership_expectations",
    "check_payload",
    "check_quarantine_share",
    "check_source_freshness",
    "payload_gate",
    "run_checks",
]
