{{
    config(
        materialized='incremental',
        unique_key=['customer_id', 'activity_date'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ phasegate.widen_batch_column('events_batch') }}",
        post_hook="delete from {{ this }} where all_events = 0
            or events_batch < (select min(v.validated_batch) from {{ ref('int_events_validated') }} as v)",
        tags=['phasegate_incremental']
    )
}}
{#- Daily activity per customer, from the validated events. An incremental run recomputes
    exactly the customer-days that events validated since its last run belong to (its
    watermark is the highest events batch it has read), however late those events arrived;
    a customer-day whose events all moved to another customer is emitted empty and removed by
    the post-hook. If the events table was rebuilt, every day is recomputed, and the post-hook
    removes the days it no longer has: a day not rewritten since batch N has all its events
    in batches up to N, so once the lowest batch left is above N none of them remain.

    `late_events` counts the day's events received more than phasegate__lookback_days after
    it, for phasegate__late_events, which sums them instead of reading every event again
    (at 1M customers that second pass over 77 M events ran beside this model's aggregate and
    slowed it). `late_after_days` records the lookback they were counted with: when it
    changes (or a table built by an earlier phasegate lacks the columns), every day is
    recomputed once. -#}
{%- set lookback = phasegate.lookback_days() -%}
{%- set recount_all = phasegate.stored_table_readable() and not phasegate.late_events_counted_now(this) -%}
{%- set touched_ctes %}
{{ phasegate.validated_batch_bounds_ctes(this, ref('int_events_validated'), 'events_batch', reread_all=recount_all) }},

touched as (
    select v.customer_id, cast(v.occurred_at as date) as activity_date
    from {{ ref('int_events_validated') }} as v
    cross join read_from as f
    where v.customer_id is not null and v.occurred_at is not null
        and v.validated_batch > f.after_batch
    union
    select v.previous_customer_id, v.previous_activity_date
    from {{ ref('int_events_validated') }} as v
    cross join read_through as r
    where v.previous_customer_id is not null and v.previous_activity_date is not null
        and v.validated_batch > r.last_batch
)
{%- endset %}
{#- The touched days, read first and written into the events' scan as literal ranges of
    occurred_at: the database then tests that one column of every stored event and reads the
    rest only for events on those days, instead of reading all 77 M (1M customers) into the
    join with the touched customer-days. -#}
{%- set touched_days = none -%}
{%- if phasegate.stored_table_readable() -%}
    {%- set touched_days = run_query('with ' ~ touched_ctes ~ ' select distinct t.activity_date from touched as t').columns[0].values() -%}
{%- endif %}

with
{%- if is_incremental() %}
{{ touched_ctes }},

events as (
    select v.*
    from {{ ref('int_events_validated') }} as v
    inner join touched as d
        on d.customer_id = v.customer_id and d.activity_date = cast(v.occurred_at as date)
    where v.quarantine_reason is null
    {%- if touched_days is not none %}
        and ({{ phasegate.on_days_condition('v.occurred_at', touched_days) }})
    {%- endif %}
),
{%- else %}
events as (
    select v.*
    from {{ ref('int_events_validated') }} as v
    where v.quarantine_reason is null
),
{%- endif %}

daily as (
    select
        customer_id,
        cast(occurred_at as date) as activity_date,
        {#- Counts are cast to bigint: a sum of integers is a 128-bit integer on DuckDB, and
            reading thirteen of those made every scan of this table ten times slower. #}
        {{ phasegate.daily_activity_aggregates() | indent(8) }},
        max(received_at) as max_received_at,
        cast({{ phasegate.count_where(phasegate.days_late('occurred_at', 'received_at') ~ ' > ' ~ lookback) }}
            as {{ dbt.type_bigint() }}) as late_events,
        cast({{ lookback }} as {{ dbt.type_int() }}) as late_after_days
    from events
    group by customer_id, cast(occurred_at as date)
),

{%- if is_incremental() %}
emptied as (
    {#- Days that lost every event (re-resolved to another customer): emitted with zero
        counts so delete+insert replaces the stale row; the post-hook then drops them. -#}
    select
        d.customer_id,
        d.activity_date,
        cast(0 as {{ dbt.type_bigint() }}) as all_events,
        cast(0 as {{ dbt.type_bigint() }}) as inbound_events,
        cast(0 as {{ dbt.type_numeric() }}) as order_amount,
        {%- for t in phasegate.event_types() %}
        cast(0 as {{ dbt.type_bigint() }}) as {{ t }}_events,
        {%- endfor %}
        cast(null as {{ dbt.type_timestamp() }}) as max_received_at,
        cast(0 as {{ dbt.type_bigint() }}) as late_events,
        cast({{ lookback }} as {{ dbt.type_int() }}) as late_after_days
    from touched as d
    where not exists (
        select 1 from daily as a
        where a.customer_id = d.customer_id and a.activity_date = d.activity_date
    )
),

days as (
    select * from daily
    union all
    select * from emptied
)
{%- else %}
{#- A full build has nothing to empty; referencing `daily` twice would also make the
    database materialise it. #}
days as (
    select * from daily
)
{%- endif %}

{#- The key is (customer_id, activity_date): a hash of the two would cost more than the
    aggregation on every full build. #}
select
    days.*,
    (select max(v.validated_batch) from {{ ref('int_events_validated') }} as v) as events_batch
from days
