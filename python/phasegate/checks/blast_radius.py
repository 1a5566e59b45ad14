"""Blast-radius gates: how many customers change phase on the latest evaluation date,
against an absolute limit and against the journey's own trailing history."""

from __future__ import annotations

import statistics

from phasegate.checks.results import CheckResult
from phasegate.config import TrailingBlastRadius
from phasegate.warehouse import Warehouse, qualified


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
