{#- Late arrivals per occurred day: events received more than phasegate__lookback_days after
    the day they occurred. Incremental runs recompute only the lookback window, so these may
    be missing from daily activity until a full refresh; they are counted here, not lost. -#}
{%- set lookback = phasegate.lookback_days() %}
with events as (
    {{ phasegate.validated_events_sql(
        ref('int_events_unioned'),
        ref('int_identifiers_stitched'),
        occurred_before=phasegate.end_of_day_literal(phasegate.as_of_date())) }}
),

late as (
    select
        cast(occurred_at as date) as occurred_on,
        {{ dbt.datediff('cast(occurred_at as date)', 'cast(received_at as date)', 'day') }} as days_late
    from events
    where quarantine_reason is null
)

select
    occurred_on,
    count(*) as late_events,
    max(days_late) as max_days_late,
    {{ lookback }} as lookback_days
from late
where days_late > {{ lookback }}
group by occurred_on
