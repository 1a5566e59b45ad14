{{ config(materialized='table') }}
{#- Late arrivals per occurred day: usable events received more than phasegate__lookback_days
    after the day they occurred. Daily activity counts them (the day is recomputed when they
    arrive), but phases evaluated before their arrival did not see them; this is the size of
    that gap, for data-quality monitoring.

    Summed from daily activity, which counts each customer-day's late events as it aggregates
    them (`late_events`), so no run reads the events a second time; the latest receipt of a
    customer-day with late events is its latest late one, which gives `max_days_late`. When
    daily activity was counted with another lookback (this model built alone after the
    lookback changed, before daily activity recounts), the events are counted directly. -#}
{%- set lookback = phasegate.lookback_days() %}
{%- set daily = ref('int_customer_days_aggregated') %}
{%- set validated = ref('int_events_validated') %}
{%- set from_daily = not execute or phasegate.late_events_counted_now(daily) %}

with late_days as (
    {%- if from_daily %}
    select
        d.activity_date as occurred_on,
        d.late_events,
        {{ phasegate.days_late('d.activity_date', 'd.max_received_at') }} as days_late
    from {{ daily }} as d
    where d.late_events > 0
    {%- else %}
    select
        cast(v.occurred_at as date) as occurred_on,
        1 as late_events,
        {{ phasegate.days_late('v.occurred_at', 'v.received_at') }} as days_late
    from {{ validated }} as v
    where v.quarantine_reason is null
        and {{ phasegate.days_late('v.occurred_at', 'v.received_at') }} > {{ lookback }}
    {%- endif %}
)

select
    occurred_on,
    cast(sum(late_events) as {{ dbt.type_bigint() }}) as late_events,
    max(days_late) as max_days_late,
    {{ lookback }} as lookback_days
from late_days
group by occurred_on
