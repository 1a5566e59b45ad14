{#- Fails with one row per duplicated combination of `columns`. With `batch_column` (an
    incremental model's run number), only the combinations written by the latest run are
    checked against the whole table (see unique_in_latest_batch). -#}
{% test unique_combination(model, columns, batch_column=none) %}
{{ phasegate.duplicated_keys_sql(model, columns, batch_column) }}
{% endtest %}

{#- Uniqueness of an incrementally built key, checked where it can break: each key written in
    the latest batch must occur once in the whole table (a failed delete of the stored row, or
    two rows in one batch). Earlier batches passed this test when they were written, so the
    cost is one probe of the table instead of a full group-by over history. -#}
{% test unique_in_latest_batch(model, column_name, batch_column) %}
{{ phasegate.duplicated_keys_sql(model, [column_name], batch_column) }}
{% endtest %}

{#- Duplicated `columns` combinations in `model`. With `batch_column`, only keys the latest
    batch wrote are checked: duplicates within that batch, and its keys that also occur in an
    earlier batch (a join probing the table with them, skipped when the table holds one batch,
    as after a full build). The latest batch is a subquery written out where it is read, not a
    CTE: DuckDB materialises a CTE read twice, and after a full build that batch is every row
    (copying 77 M keys made the events' test take 11.4 s instead of 4.0 s). -#}
{% macro duplicated_keys_sql(model, columns, batch_column=none) %}
{%- set t_cols = [] -%}
{%- set on = [] -%}
{%- for c in columns -%}
    {%- do t_cols.append('t.' ~ c) -%}
    {%- do on.append('k.' ~ c ~ ' = t.' ~ c) -%}
{%- endfor -%}
{%- if batch_column %}
{%- set last_batch = '(select max(b.' ~ batch_column ~ ') from ' ~ model ~ ' as b)' -%}
{%- set first_batch = '(select min(b.' ~ batch_column ~ ') from ' ~ model ~ ' as b)' -%}
{%- set latest -%}
(
    select {% for c in columns %}l.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
    from {{ model }} as l
    where l.{{ batch_column }} = {{ last_batch }}
)
{%- endset %}
with within_batch as (
    {{ phasegate.grouped_duplicates(latest, columns) | indent(4) }}
),

across_batches as (
    select {{ t_cols | join(', ') }}, count(*) + 1 as n_rows
    from {{ model }} as t
    inner join (
        select distinct {% for c in columns %}x.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
        from {{ latest | indent(8) }} as x
        where {{ first_batch }} < {{ last_batch }}
    ) as k on {{ on | join(' and ') }}
    where t.{{ batch_column }} < {{ last_batch }}
    group by {{ t_cols | join(', ') }}
)

select * from within_batch
union all
select * from across_batches
{%- else %}
{{ phasegate.grouped_duplicates(model, columns) }}
{%- endif %}
{% endmacro %}

{#- `columns` combinations occurring more than once in `relation` (a relation or a
    parenthesised subquery), with their count. Where the engine has a fast 64-bit hash, the
    repeated hashes are found first (repeated_values) and only their rows grouped by value:
    grouping 77 M string keys took 17-25 s on DuckDB. A collision only costs a second look. -#}
{% macro grouped_duplicates(relation, columns) %}
{%- set t_cols = [] -%}
{%- set h_cols = [] -%}
{%- for c in columns -%}
    {%- do t_cols.append('t.' ~ c) -%}
    {%- do h_cols.append('h.' ~ c) -%}
{%- endfor -%}
{%- set t_hash = phasegate.key_hash(t_cols) -%}
select {{ t_cols | join(', ') }}, count(*) as n_rows
from {{ relation }} as t
{%- if t_hash %}
where {{ t_hash }} in (
    {{ phasegate.repeated_values(phasegate.key_hash(h_cols), relation ~ ' as h') | indent(4) }}
)
{%- endif %}
group by {{ t_cols | join(', ') }}
having count(*) > 1
{%- endmacro %}

{#- A 64-bit hash of `columns` (qualified names), or none where the engine lacks a cheap one
    and duplicates are grouped by value directly. -#}
{% macro key_hash(columns) %}
  {{- return(adapter.dispatch('key_hash', 'phasegate')(columns)) -}}
{% endmacro %}

{% macro default__key_hash(columns) %}
  {{- return(none) -}}
{% endmacro %}

{% macro duckdb__key_hash(columns) %}
  {{- return('hash(' ~ columns | join(', ') ~ ')') -}}
{% endmacro %}

{#- Fails (or warns, by its severity) with every row of the model: for reports whose rows are
    problems, such as phasegate__unvalidated_events. -#}
{% test is_empty(model) %}
select * from {{ model }}
{% endtest %}
