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

{#- Duplicated `columns` combinations in `model`. With `batch_column`, an incremental run
    probes only the keys its latest batch wrote; when the table holds one batch (a full
    build) that probe would cost more than the plain group-by, so every row is grouped. -#}
{% macro duplicated_keys_sql(model, columns, batch_column=none) %}
{%- set t_cols = [] -%}
{%- set on = [] -%}
{%- for c in columns -%}
    {%- do t_cols.append('t.' ~ c) -%}
    {%- do on.append('k.' ~ c ~ ' = t.' ~ c) -%}
{%- endfor -%}
{%- if batch_column %}
with batches as (
    select min(b.{{ batch_column }}) as first_batch, max(b.{{ batch_column }}) as last_batch
    from {{ model }} as b
),

latest as (
    select distinct {% for c in columns %}l.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
    from {{ model }} as l
    cross join batches as bs
    where bs.first_batch < bs.last_batch and l.{{ batch_column }} = bs.last_batch
)

select {{ t_cols | join(', ') }}, count(*) as n_rows
from {{ model }} as t
cross join batches as bs
where bs.first_batch = bs.last_batch
    or exists (select 1 from latest as k where {{ on | join(' and ') }})
group by {{ t_cols | join(', ') }}
having count(*) > 1
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
