"""The source-freshness gate: how long ago the newest source event was received."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from phasegate.checks.results import CheckResult
from phasegate.config import FreshnessCheck
from phasegate.dbt_runner import target_dir
from phasegate.warehouse import Warehouse, qualified


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
