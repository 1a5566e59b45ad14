"""The gate on the share of source events quarantined by the staging models."""

from __future__ import annotations

from phasegate.checks.results import CheckResult
from phasegate.warehouse import Warehouse, qualified


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
