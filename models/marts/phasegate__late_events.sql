{{
    config(
        materialized='incremental',
        unique_key='occurred_on',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook="delete from {{ this }} where late_events = 0",
        tags=['phasegate_incremental']
    )
}}
{#- Late arrivals per occurred day: usable events received more than phasegate__lookback_days
    after the day they occurred. Daily activity counts them (the day is recomputed when they
    arrive), but phases evaluated before their arrival did not see them; this is the size of
    that gap, for data-quality monitoring.

    An incremental run recounts only the days that events validated since its last run
    (`events_batch`, as in daily activity) occurred on, or had occurred on before being
    rewritten, reading the stored events of those days alone (literal occurred_at ranges).
    Every day is recounted when the events table was rebuilt, the lookback changed, or the
    table is empty; a day left with no late event is removed by the post-hook. -#}
{%- set lookback = phasegate.lookback_days() %}
{%- set validated = ref('int_events_validated') %}
{%- set days = none %}
{%- if phasegate.stored_table_readable() and 'events_batch' in phasegate.relation_columns(this) %}
    {%- set stored = run_query('select count(*), min(t.lookback_days), max(t.lookback_days), max(t.events_batch), '
        ~ phasegate.validated_rebuilt_since('(select min(v.validated_batch) from ' ~ validated ~ ' as v)', 'max(t.events_batch)')
        ~ ' from ' ~ this ~ ' as t').rows[0] %}
    {%- if stored[0] > 0 and stored[1] == lookback and stored[2] == lookback and stored[3] is not none
        and stored[4] is false %}
        {%- set days = run_query('select cast(v.occurred_at as date) from ' ~ validated ~ ' as v '
            ~ 'where v.validated_batch > ' ~ stored[3] ~ ' and v.occurred_at is not null '
            ~ 'union select v.previous_activity_date from ' ~ validated ~ ' as v '
            ~ 'where v.validated_batch > ' ~ stored[3] ~ ' and v.previous_activity_date is not null').columns[0].values() %}
    {%- endif %}
{%- endif %}

with latest_batch as (
    select max(v.validated_batch) as batch from {{ validated }} as v
),

late as (
    select
        cast(v.occurred_at as date) as occurred_on,
        {{ dbt.datediff('cast(v.occurred_at as date)', 'cast(v.received_at as date)', 'day') }} as days_late
    from {{ validated }} as v
    where v.quarantine_reason is null
    {%- if days is not none %}
        and ({{ phasegate.on_days_condition('v.occurred_at', days) }})
    {%- endif %}
),

per_day as (
    select
        occurred_on,
        count(case when days_late > {{ lookback }} then 1 end) as late_events,
        max(case when days_late > {{ lookback }} then days_late end) as max_days_late
    from late
    group by occurred_on
    {%- if not is_incremental() %}
    having count(case when days_late > {{ lookback }} then 1 end) > 0
    {%- endif %}
)

select
    p.occurred_on,
    p.late_events,
    p.max_days_late,
    {{ lookback }} as lookback_days,
    b.batch as events_batch
from per_day as p
cross join latest_batch as b
{%- if is_incremental() and days is none %}
{#- Recounting every day: stored days without any event left are written back empty, so
    that delete+insert replaces them and the post-hook removes them. #}
union all
select
    t.occurred_on,
    0 as late_events,
    cast(null as {{ dbt.type_int() }}) as max_days_late,
    {{ lookback }} as lookback_days,
    b.batch as events_batch
from {{ this }} as t
cross join latest_batch as b
left join per_day as p on p.occurred_on = t.occurred_on
where p.occurred_on is null
{%- endif %}
