{#- One row per customer known on `as_of`, with every registered signal. `daily` is the
    daily activity relation, `customers` and `consents` the staged relations; `activity`, when
    given, is a relation already holding customer_activity_sql's columns as of `as_of` (the
    incremental summary), which is then read instead of aggregating `daily`. Used by the
    phasegate__customer_signals model and by the backfill operation, so a backfilled day and
    a scheduled day are computed by the same SQL. -#}
{% macro customer_signals_sql(as_of, daily, customers, consents, activity=none) %}
{%- set as_of_lit = phasegate.date_literal(as_of) -%}
{%- set eod = phasegate.end_of_day_literal(as_of) -%}
{%- set signals = phasegate.signals() -%}

with activity as (
    {%- if activity is none %}
    {{ phasegate.customer_activity_sql(as_of, daily) }}
    {%- else %}
    select * from {{ activity }}
    {%- endif %}
),

consent_latest as (
    select
        c.customer_id,
        c.channel,
        c.status,
        row_number() over (
            partition by c.customer_id, c.channel order by c.updated_at desc, c.status
        ) as rn
    from {{ consents }} as c
    where c.updated_at < {{ eod }}
),

consent_flags as (
    select
        customer_id
        {%- for ch in phasegate.consent_channels() %},
        max(case when channel = '{{ ch }}' and status = 'granted' then 1 else 0 end) = 1
            as consent_{{ ch }}_granted
        {%- endfor %}
    from consent_latest
    where rn = 1
    group by customer_id
),

base as (
    select
        c.customer_id,
        cast(c.signup_at as date) as signup_on,
        c.country,
        {{ dbt.datediff('cast(c.signup_at as date)', as_of_lit, 'day') }} as days_since_signup,
        act.first_seen_on,
        act.last_seen_on
        {%- for s in phasegate.activity_signals() %},
        {%- if s.kind in ('sum', 'active_days') %}
        coalesce(act.{{ s.name }}, 0) as {{ s.name }}
        {%- else %}
        {{ dbt.datediff('act.' ~ phasegate.activity_column(s), as_of_lit, 'day') }} as {{ s.name }}
        {%- endif %}
        {%- endfor %}
        {%- for s in signals if s.kind == 'consent' %},
        coalesce(cf.consent_{{ s.channel }}_granted, false) as {{ s.name }}
        {%- endfor %}
    from {{ customers }} as c
    left join activity as act on act.customer_id = c.customer_id
    left join consent_flags as cf on cf.customer_id = c.customer_id
    where c.signup_at < {{ eod }}
)

{%- set ns = namespace(prev='base') %}
{%- for r in phasegate.signal_relations() %},

scored_{{ loop.index }} as (
    select {{ r.key }} as customer_id{% for c in r.columns %}, {{ c }}{% endfor %}
    {%- if r.get('as_of_column') %}
    from (
        select
            sr.*,
            row_number() over (partition by sr.{{ r.key }} order by sr.{{ r.as_of_column }} desc) as pg_rn
        from {{ phasegate.signal_relation(r) }} as sr
        where sr.{{ r.as_of_column }} <= {{ as_of_lit }}
    ) as latest
    where pg_rn = 1
    {%- else %}
    from {{ phasegate.signal_relation(r) }}
    {%- endif %}
),

with_scored_{{ loop.index }} as (
    select
        prev.*{% for c in r.columns %},
        sc.{{ c }}{% endfor %}
    from {{ ns.prev }} as prev
    left join scored_{{ loop.index }} as sc on sc.customer_id = prev.customer_id
)
{%- set ns.prev = 'with_scored_' ~ loop.index %}
{%- endfor %}

{%- set expressions = signals | selectattr('kind', 'equalto', 'expression') | list %}
{%- for s in expressions %},

with_{{ s.name }} as (
    select
        prev.*,
        {{ s.sql }} as {{ s.name }}
    from {{ ns.prev }} as prev
)
{%- set ns.prev = 'with_' ~ s.name %}
{%- endfor %}

select
    *,
    {{ as_of_lit }} as as_of_date
from {{ ns.prev }}
{% endmacro %}


{#- A signal's daily column(s) as a list (`column` may be one name or a list). -#}
{% macro signal_column_list(signal) %}
  {%- do return([signal.column] if signal.column is string else signal.column) -%}
{% endmacro %}

{% macro signal_columns_expr(signal, alias) %}
  {%- set parts = [] -%}
  {%- for c in phasegate.signal_column_list(signal) %}{% do parts.append('coalesce(' ~ alias ~ '.' ~ c ~ ', 0)') %}{% endfor -%}
  {{- '(' ~ (parts | join(' + ')) ~ ')' -}}
{% endmacro %}

