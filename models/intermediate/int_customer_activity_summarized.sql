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
        like daily activity's). When those events only add to the customer's activity (each
        is new, or was not counted before: it has no previous_customer_id) and daily activity
        has read them, the stored row is updated by the additions (activity_addition) from
        those events and the rewritten daily rows alone. Any other change (an event moved
        from or to another customer, or rewritten in place) recomputes the customer from all
        their daily rows: at 1M customers that reads all 47.8 M of them, 2 of the summary's
        3.5 s warm and 4 of 5.5 cold, for the 67 k customers a day's new events touch;
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
{#- Likewise the stored batch, as a literal the scans of validated events and daily activity
    for the additions test against their row groups' statistics. -#}
{%- set stored_as_of = none -%}
{%- set last_batch = 'm.last_batch' -%}
{%- if phasegate.stored_table_readable() -%}
    {%- set stored = run_query('select max(t.summarized_as_of), max(t.events_batch) from ' ~ this ~ ' as t').rows[0] -%}
    {%- set stored_as_of = phasegate.as_date(stored[0]) -%}
    {%- if stored_as_of is not none and stored_as_of <= as_of -%}
        {%- set previous = stored_as_of -%}
        {%- set previous_in_deltas = stored_as_of -%}
    {%- endif -%}
    {%- if stored[1] is not none -%}
        {%- set last_batch = stored[1] | int | string -%}
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
        end as recompute_all,
        coalesce((select max(d.events_batch) from {{ daily }} as d) >= b.batch, false) as daily_current
        {{- phasegate.window_bound_columns('s.previous_as_of') }}
    from stored as s
    cross join latest_batch as b
),

{#- Events validated since the stored batch (apart from the recompute-all path below). -#}
changed_events as (
    select v.customer_id, v.previous_customer_id, v.occurred_at, v.event_type, v.amount, v.quarantine_reason
    from {{ validated }} as v
    cross join mode as m
    where v.validated_batch > {{ last_batch }} and not m.recompute_all
),

{#- Customers recomputed from all their daily rows: those an event left or was rewritten for,
    and every customer with new events while daily activity has not read them all. Apart
    from the recompute-all path below, and compared with the mode's batch rather than the
    literal: DuckDB sizes a join by its inputs' estimates, and with every stored and daily
    customer unioned in here (17 s a day at 1M customers), or with the literal's estimate
    (5.8 s with no customer to recompute), it built the join's hash table on all 47.8 M daily
    rows. -#}
touched as (
    select v.previous_customer_id as customer_id
    from {{ validated }} as v
    cross join mode as m
    where v.validated_batch > m.last_batch and v.previous_customer_id is not null and not m.recompute_all
    union
    select v.customer_id
    from {{ validated }} as v
    cross join mode as m
    where v.validated_batch > m.last_batch and v.customer_id is not null and not m.recompute_all
        and (v.previous_customer_id is not null or not m.daily_current)
),

{#- Per customer-day, the values of the events that only add to it, for customers not
    recomputed, on days up to the stored as-of date (later days are read as window moves). -#}
added_days as (
    select
        c.customer_id,
        cast(c.occurred_at as date) as activity_date,
        {{ phasegate.daily_activity_aggregates() | indent(8) }}
    from changed_events as c
    cross join mode as m
    left join touched as tc on tc.customer_id = c.customer_id
    where c.customer_id is not null
        and c.quarantine_reason is null
        and tc.customer_id is null
        and cast(c.occurred_at as date) <= {{ phasegate.previous_as_of_sql(previous) }}
    group by c.customer_id, cast(c.occurred_at as date)
),

{#- The additions per customer, against the rewritten daily rows of those days. -#}
added as (
    select
        a.customer_id,
        min(case when a.inbound_events > 0 then a.activity_date end) as first_seen_on,
        max(case when a.inbound_events > 0 then a.activity_date end) as last_seen_on
        {%- for s in signals %},
        {{ phasegate.activity_addition(s, previous, 'a', 'd') }} as {{ phasegate.activity_column(s) }}
        {%- endfor %}
    from added_days as a
    cross join mode as m
    left join {{ daily }} as d
        on d.customer_id = a.customer_id and d.activity_date = a.activity_date and d.events_batch > {{ last_batch }}
    group by a.customer_id
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

{#- The stored row with the additions is the row as of the previous as-of date (stored and
    added dates are on or before it); the window moves then apply. Their dates are after it,
    so the earliest first date is the stored or added one and the latest last date the
    move's. -#}
shifted as (
    select
        k.customer_id,
        coalesce({{ phasegate.earlier_date('t.first_seen_on', 'e.first_seen_on') }}, d.first_seen_on) as first_seen_on,
        coalesce(d.last_seen_on, {{ phasegate.later_date('t.last_seen_on', 'e.last_seen_on') }}) as last_seen_on
        {%- for s in signals %}
        {%- set c = phasegate.activity_column(s) %},
        {%- if s.kind == 'days_since_last' %}
        coalesce(d.{{ c }}, {{ phasegate.later_date('t.' ~ c, 'e.' ~ c) }}) as {{ c }}
        {%- elif s.kind == 'days_since_first' %}
        coalesce({{ phasegate.earlier_date('t.' ~ c, 'e.' ~ c) }}, d.{{ c }}) as {{ c }}
        {%- else %}
        coalesce(t.{{ c }}, 0) + coalesce(e.{{ c }}, 0) + coalesce(d.{{ c }}, 0) as {{ c }}
        {%- endif %}
        {%- endfor %}
    from (
        select x.customer_id from deltas as x
        union
        select x.customer_id from added as x
    ) as k
    left join deltas as d on d.customer_id = k.customer_id
    left join added as e on e.customer_id = k.customer_id
    left join {{ this }} as t on t.customer_id = k.customer_id
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
