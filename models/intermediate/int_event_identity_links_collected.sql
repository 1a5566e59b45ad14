{{
    config(
        materialized='incremental',
        unique_key=['user_id', 'anonymous_id'],
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        tags=['phasegate_incremental']
    )
}}
{#- Every (user_id, anonymous_id) pair events have carried, with the latest time one was
    received: the identity links events contribute to the graph. Incremental on received_at
    with phasegate__lookback_days, like int_events_validated, so a daily run reads the last
    days of events instead of all of them; the newest copy of a pair is always in the window,
    so its stored time only moves forward. Events that land behind the window are counted by
    phasegate__unvalidated_events, and a full refresh collects them. -#}
with
{%- if is_incremental() %}
watermark as (
    select
        coalesce(
            {{ dbt.dateadd('day', -1 * phasegate.lookback_days(), 'max(t.observed_at)') }},
            {{ phasegate.timestamp_floor() }}
        ) as received_from
    from {{ this }} as t
),
{%- endif %}

events as (
    select e.user_id, e.anonymous_id, e.received_at
    from {{ ref('int_events_unioned') }} as e
    {%- if is_incremental() %}
    cross join watermark as w
    {%- endif %}
    where e.user_id is not null
        and e.anonymous_id is not null
    {%- if is_incremental() %}
        {#- No `or`: a plain range lets DuckDB read only the window's rows. #}
        and e.received_at >= w.received_from
    {%- endif %}
)

select
    user_id,
    anonymous_id,
    max(received_at) as observed_at
from events
group by user_id, anonymous_id
