{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        pre_hook="{{ phasegate.widen_batch_column('events_batch') }}",
        tags=['phasegate_incremental']
    )
}}
{#- Each customer's activity signals as of the evaluation date, in a form that only changes
    when the customer's activity or window contents change (customer_activity_sql): day
    counters are derived from it by phasegate__customer_signals.

    An incremental run rewrites only
      - customers whose events were validated since the summary's watermark (its events_batch,
        like daily activity's), recomputed from all their daily rows; and
      - customers with a daily row entering or leaving a window between the stored as-of date
        and this one, updated by that difference (activity_delta).
    Every other row is already true as of this date. Everything is recomputed when the
    evaluation date goes back, when the activity signal definitions change (the stored
    fingerprint differs), or when the events table was rebuilt. -#}
{%- set as_of = phasegate.as_of_date() -%}
{%- set as_of_lit = phasegate.date_literal(as_of) -%}
{%- set fingerprint = phasegate.activity_signals_fingerprint() -%}
{%- set signals = phasegate.activity_signals() -%}
{%- set daily = ref('int_customer_days_aggregated') -%}
{%- set validated = ref('int_events_validated') -%}
{#- The stored evaluation date, read first so the rows whose window membership changed
    are found by literal date ranges (activity_row_moves), tested on the date column alone,
    rather than by comparing every one of the 47.8 M daily rows (1M customers) with window
    bounds carried on each row by a cross join. Unknown
    (not executing, or a first build), it comes from the `mode` row instead, whose columns
    `moved` reads as m and carries on to `deltas` as a. -#}
{%- set previous = {'as_of': 'm.previous_as_of', 'bounds': 'm'} -%}
{%- set previous_in_deltas = {'as_of': 'a.previous_as_of', 'bounds': 'a'} -%}
{%- set stored_as_of = none -%}
{%- if phasegate.stored_table_readable() -%}
    {%- set stored_as_of = phasegate.as_date(run_query('select max(t.summarized_as_of) from ' ~ this ~ ' as t').rows[0][0]) -%}
    {%- if stored_as_of is not none and stored_as_of <= as_of -%}
        {%- set previous = stored_as_of -%}
        {%- set previous_in_deltas = stored_as_of -%}
    {%- endif -%}
{%- endif %}

with
latest_batch as (
    select max(v.validated_batch) as batch, min(v.validated_batch) as first_batch
    from {{ validated }} as v
),

{%- if is_incremental() %}

stored as (
    select
        max(t.summarized_as_of) as previous_as_of,
        max(t.events_batch) as last_batch,
        min(t.signals_fingerprint) as min_fingerprint,
        max(t.signals_fingerprint) as max_fingerprint
    from {{ this }} as t
),

mode as (
    select
        s.previous_as_of,
        s.last_batch,
        case
            when s.previous_as_of is null or s.previous_as_of > {{ as_of_lit }} then true
            when s.min_fingerprint <> {{ fingerprint }} or s.max_fingerprint <> {{ fingerprint }} then true
            when {{ phasegate.validated_rebuilt_since('b.first_batch', 's.last_batch') }} then true
            else false
        end as recompute_all
        {{- phasegate.window_bound_columns('s.previous_as_of') }}
    from stored as s
    cross join latest_batch as b
),

{#- Customers whose daily rows changed since the stored batch. Apart from the recompute-all
    path below: DuckDB sizes a join by its inputs' estimates, and with every stored and
    daily customer unioned in here it built the join's hash table on all 47.8 M daily rows
    (1M customers: 17 s a day) to recompute the 64 k customers touched. -#}
touched as (
    select v.customer_id
    from {{ validated }} as v
    cross join mode as m
    where v.validated_batch > m.last_batch and v.customer_id is not null and not m.recompute_all
    union
    select v.previous_customer_id
    from {{ validated }} as v
    cross join mode as m
    where v.validated_batch > m.last_batch and v.previous_customer_id is not null and not m.recompute_all
),

{#- Everything, when the stored rows cannot be carried forward: every customer with daily
    rows, and every stored customer (rewritten with empty activity if it has none now).
    Daily rows for that path only: on other days this is empty, so the join below does not
    build a hash table on every daily row to probe it with no customers. -#}
daily_for_everyone as (
    select d.*
    from {{ daily }} as d
    cross join mode as m
    where m.recompute_all
),

everyone as (
    select t.customer_id
    from {{ this }} as t
    cross join mode as m
    where m.recompute_all
    union
    select d.customer_id
    from daily_for_everyone as d
),

recomputed as (
    {{ phasegate.customer_activity_sql(as_of, daily, only='touched') }}
    union all
    {{ phasegate.customer_activity_sql(as_of, 'daily_for_everyone', only='everyone') }}
),

moved as (
    select a.*, m.*
    from {{ daily }} as a
    cross join mode as m
    where not m.recompute_all
        and a.activity_date <= {{ as_of_lit }}
        and ({{ phasegate.activity_row_moves(as_of, previous, 'a') }})
        and not exists (select 1 from touched as tc where tc.customer_id = a.customer_id)
),

deltas as (
    select
        a.customer_id,
        min(case when a.inbound_events > 0 and a.activity_date > {{ phasegate.previous_as_of_sql(previous_in_deltas) }} then a.activity_date end)
            as first_seen_on,
        max(case when a.inbound_events > 0 and a.activity_date > {{ phasegate.previous_as_of_sql(previous_in_deltas) }} then a.activity_date end)
            as last_seen_on
        {%- for s in signals %},
        {{ phasegate.activity_delta(s, as_of, previous_in_deltas, 'a') }} as {{ phasegate.activity_column(s) }}
        {%- endfor %}
    from moved as a
    group by a.customer_id
),

{#- Stored dates are on or before the previous as-of date and the delta's after it, so the
    earliest first date is the stored one and the latest last date the delta's. -#}
shifted as (
    select
        d.customer_id,
        coalesce(t.first_seen_on, d.first_seen_on) as first_seen_on,
        coalesce(d.last_seen_on, t.last_seen_on) as last_seen_on
        {%- for s in signals %}
        {%- set c = phasegate.activity_column(s) %},
        {%- if s.kind == 'days_since_last' %}
        coalesce(d.{{ c }}, t.{{ c }}) as {{ c }}
        {%- elif s.kind == 'days_since_first' %}
        coalesce(t.{{ c }}, d.{{ c }}) as {{ c }}
        {%- else %}
        coalesce(t.{{ c }}, 0) + d.{{ c }} as {{ c }}
        {%- endif %}
        {%- endfor %}
    from deltas as d
    left join {{ this }} as t on t.customer_id = d.customer_id
),

summary as (
    select * from recomputed
    union all
    select * from shifted
)
{%- else %}

summary as (
    {{ phasegate.customer_activity_sql(as_of, daily) }}
)
{%- endif %}

select
    s.customer_id,
    s.first_seen_on,
    s.last_seen_on,
    {%- for sig in signals %}
    cast(s.{{ phasegate.activity_column(sig) }} as {{ phasegate.activity_column_type(sig) }})
        as {{ phasegate.activity_column(sig) }},
    {%- endfor %}
    {{ as_of_lit }} as summarized_as_of,
    b.batch as events_batch,
    cast({{ fingerprint }} as {{ dbt.type_string() }}) as signals_fingerprint
from summary as s
cross join latest_batch as b
