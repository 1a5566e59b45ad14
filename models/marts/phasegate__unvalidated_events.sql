{#- Source events the incremental watermark never saw, per day received: received before the
    end of the as-of day but absent from int_events_validated, because a loader landed them
    with a received_at older than the lookback behind the latest stored one (a replay). They
    are counted here, and the build warns, so none is lost silently; a `--full-refresh` of
    int_events_validated and int_event_identity_links_collected picks them up. Only events
    received in the last phasegate__unvalidated_events_horizon_days are looked at: an anti-join over all history
    cost 40 s of a 1M-customer incremental day. Stored copies are looked up from a day before
    the horizon, so a duplicate redelivered more than a day after its original, across the
    horizon's start, can show here too. -#}
{%- set as_of = phasegate.as_of_date() -%}
{%- set horizon = phasegate.days_before(as_of, var('phasegate__unvalidated_events_horizon_days', 30) | int) -%}
{#- An outer join on the stored ids, not `not exists`: DuckDB decorrelates the latter into a
    delim join that took 9.4 s at 1M customers, against 4.2 s for this. -#}
select
    cast(e.received_at as date) as received_on,
    count(*) as unvalidated_events,
    min(e.event_id) as sample_event_id
from {{ ref('int_events_unioned') }} as e
left join (
    select v.event_row_id
    from {{ ref('int_events_validated') }} as v
    where v.received_at >= {{ phasegate.date_literal(phasegate.days_before(horizon, 1)) }}
) as stored on stored.event_row_id = e.event_id
where e.event_id is not null
    and e.received_at < {{ phasegate.end_of_day_literal(as_of) }}
    and e.received_at >= {{ phasegate.date_literal(horizon) }}
    and stored.event_row_id is null
group by cast(e.received_at as date)
