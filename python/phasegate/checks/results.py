"""What every check returns, and the wrapper that makes a check which cannot run fail
closed."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from phasegate.warehouse import Warehouse

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
