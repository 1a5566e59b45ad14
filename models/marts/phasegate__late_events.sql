{#- Late arrivals per occurred day: usable events received more than phasegate__lookback_days
    after the day they occurred. Daily activity counts them (the day is recomputed when they
    arrive), but phases evaluated before their arrival did not see them; this is the size of
    that gap, for data-quality monitoring. -#}
{%- set lookback = phasegate.lookback_days() %}
with late as (
    select
        cast(v.occurred_at as date) as occurred_on,
        {{ dbt.datediff('cast(v.occurred_at as date)', 'cast(v.received_at as date)', 'day') }} as days_late
    from {{ ref('int_events_validated') }} as v
    where v.quarantine_reason is null
)

select
    occurred_on,
    count(*) as late_events,
    max(days_late) as max_days_late,
    {{ lookback }} as lookback_days
from late
where days_late > {{ lookback }}
group by occurred_on
