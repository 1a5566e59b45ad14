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
    batch wrote are checked: duplicates within that batch (a group-by over its rows alone),
    and its keys that also occur in an earlier batch (a join probing the table with them).
    On a one-batch table (a full build) the first part is the plain group-by and the second
    has nothing to probe with. -#}
{% macro duplicated_keys_sql(model, columns, batch_column=none) %}
{%- set t_cols = [] -%}
{%- set on = [] -%}
{%- for c in columns -%}
    {%- do t_cols.append('t.' ~ c) -%}
    {%- do on.append('k.' ~ c ~ ' = t.' ~ c) -%}
{%- endfor -%}
{%- if batch_column %}
with batches as (
    select max(b.{{ batch_column }}) as last_batch
    from {{ model }} as b
),

latest as (
    select l.*
    from {{ model }} as l
    inner join batches as bs on l.{{ batch_column }} = bs.last_batch
),

within_batch as (
    select {{ t_cols | join(', ') }}, count(*) as n_rows
    from latest as t
    group by {{ t_cols | join(', ') }}
    having count(*) > 1
),

across_batches as (
    select {{ t_cols | join(', ') }}, count(*) + 1 as n_rows
    from {{ model }} as t
    inner join batches as bs on t.{{ batch_column }} < bs.last_batch
    inner join (
        select distinct {% for c in columns %}x.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
        from latest as x
    ) as k on {{ on | join(' and ') }}
    group by {{ t_cols | join(', ') }}
)

select * from within_batch
union all
select * from across_batches
{%- else %}
select {{ t_cols | join(', ') }}, count(*) as n_rows
from {{ model }} as t
group by {{ t_cols | join(', ') }}
having count(*) > 1
{%- endif %}
{% endmacro %}

{#- Fails (or warns, by its severity) with every row of the model: for reports whose rows are
    problems, such as phasegate__unvalidated_events. -#}
{% test is_empty(model) %}
select * from {{ model }}
{% endtest %}
