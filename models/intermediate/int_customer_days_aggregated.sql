{{
    config(
        materialized='incremental',
        unique_key='customer_day_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        tags=['phasegate_incremental']
    )
}}
{#- Daily activity per customer. Each run recomputes the days from the watermark (the last
    day already aggregated) minus `phasegate__lookback_days` through the as-of date, so
    events that arrive late for those days are counted; older days are final. -#}
{%- set as_of = phasegate.as_of_date() -%}
{%- set outbound = phasegate.outbound_event_types() -%}
{%- if is_incremental() -%}
    {%- set window_start = dbt.dateadd(
        'day', -1 * phasegate.lookback_days(),
        '(select max(t.activity_date) from ' ~ this ~ ' as t)') -%}
    {%- set occurred_from = 'coalesce(' ~ window_start ~ ", cast('1900-01-01' as "
        ~ dbt.type_timestamp() ~ '))' -%}
{%- else -%}
    {%- set occurred_from = none -%}
{%- endif %}

with events as (
    {{ phasegate.validated_events_sql(
        ref('int_events_unioned'),
        ref('int_identifiers_stitched'),
        occurred_from=occurred_from,
        occurred_before=phasegate.end_of_day_literal(as_of)) }}
),

daily as (
    select
        customer_id,
        cast(occurred_at as date) as activity_date,
        count(*) as all_events,
        sum(case when event_type not in ({{ phasegate.quoted_list(outbound) }}) then 1 else 0 end)
            as inbound_events,
        sum(case when event_type = '{{ phasegate.order_event_type() }}' then amount else 0 end)
            as order_amount,
        {%- for t in phasegate.event_types() %}
        sum(case when event_type = '{{ t }}' then 1 else 0 end) as {{ t }}_events,
        {%- endfor %}
        max(received_at) as max_received_at
    from events
    where quarantine_reason is null
    group by customer_id, cast(occurred_at as date)
)

select
    {{ phasegate.surrogate_key(['customer_id', 'activity_date']) }} as customer_day_id,
    daily.*
from daily
