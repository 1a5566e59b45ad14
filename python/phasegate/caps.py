"""Frequency caps and journey priority: one activation budget per customer across every
journey and every sync, decided in the warehouse.

Each phase change (a transition with a previous phase) is decided once, by the first sync run
that sees it, and every sync follows that decision: `activated` (its events go out), `capped`
(over budget: held back everywhere), `held_out` or `suppressed` (never acted on; they use no
budget). Pending changes of one customer are ranked by journey priority (lower first), then
newest first; a change is activated while the customer's budget for the evaluation day and
for the trailing 7 days has room. Decisions are rows in `activation_decisions`, so the budget
is exact and the audit shows why each change was or was not acted on."""

from __future__ import annotations

from datetime import date, timedelta

from phasegate.config import FrequencyCaps
from phasegate.ledger import Ledger, now
from phasegate.warehouse import Warehouse, qualified

UNLIMITED = 1_000_000_000


def allocate(
    wh: Warehouse,
    ledger: Ledger,
    caps: FrequencyCaps,
    as_of: date,
    run_id: str,
    lookback_days: int,
) -> dict[str, int]:
    """Decide every undecided phase change since `as_of - lookback_days`; returns the count
    of new decisions per outcome. The caller holds the `activation_budget` lock and commits
    (or, for a dry or blocked run, rolls back) together with its plan."""
    s = wh.schema
    decisions = ledger.table("activation_decisions")
    per_day = caps.per_day or UNLIMITED
    per_week = caps.per_week or UNLIMITED
    since = as_of - timedelta(days=lookback_days)
    week_start = as_of - timedelta(days=6)
    wh.execute(
        f"""
        insert into {decisions} (transition_id, customer_id, journey, to_phase, transitioned_on,
                                 journey_priority, decision, decided_on, run_id, decided_at)
        with priorities as (
            select journey, min(journey_priority) as journey_priority
            from {qualified(s, "phasegate__journey_phases")} group by journey
        ),
        pending as (
            select t.transition_id, t.customer_id, t.journey, t.to_phase, t.transitioned_on,
                   coalesce(p.journey_priority, 100) as journey_priority,
                   case
                       when sp.customer_id is not null then 'suppressed'
                       when coalesce(h.is_held_out, false) then 'held_out'
                   end as exclusion
            from {qualified(s, "phasegate__phase_transitions")} as t
            left join priorities as p on p.journey = t.journey
            left join {qualified(s, "phasegate__suppressed_customers")} as sp
              on sp.customer_id = t.customer_id
            left join {qualified(s, "phasegate__holdout_assignments")} as h
              on h.journey = t.journey and h.customer_id = t.customer_id
            where t.from_phase is not null and t.transitioned_on >= ? and t.transitioned_on <= ?
              and not exists (select 1 from {decisions} as d where d.transition_id = t.transition_id)
        ),
        used as (
            select customer_id,
                   sum(case when decided_on = ? then 1 else 0 end) as used_today,
                   count(*) as used_week
            from {decisions}
            where decision = 'activated' and decided_on >= ? and decided_on <= ?
            group by customer_id
        ),
        ranked as (
            select pe.*,
                   row_number() over (
                       partition by pe.customer_id
                       order by pe.journey_priority, pe.transitioned_on desc, pe.journey, pe.transition_id
                   ) as budget_rank,
                   least({per_day} - coalesce(u.used_today, 0),
                         {per_week} - coalesce(u.used_week, 0)) as room
            from pending as pe
            left join used as u on u.customer_id = pe.customer_id
            where pe.exclusion is null
        )
        select transition_id, customer_id, journey, to_phase, transitioned_on, journey_priority,
               case when budget_rank <= room then 'activated' else 'capped' end, ?, ?, ?
        from ranked
        union all
        select transition_id, customer_id, journey, to_phase, transitioned_on, journey_priority,
               exclusion, ?, ?, ?
        from pending
        where exclusion is not null""",
        (since, as_of, as_of, week_start, as_of, as_of, run_id, now(), as_of, run_id, now()),
    )
    counts = dict(
        wh.query(f"select decision, count(*) from {decisions} where run_id = ? group by decision", (run_id,))
    )
    return counts
