{#- Fails with one row per duplicated combination of `columns`. With `batch_column` (an
    incremental model's run number), only the combinations written by the latest run are
    checked against the whole table, as unique_in_latest_batch does for one column. -#}
{% test unique_combination(model, columns, batch_column=none) %}
{%- if batch_column %}
with latest as (
    select distinct {% for c in columns %}l.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
    from {{ model }} as l
    where l.{{ batch_column }} = (select max(b.{{ batch_column }}) from {{ model }} as b)
)

select {% for c in columns %}t.{{ c }}, {% endfor %}count(*) as n_rows
from {{ model }} as t
inner join latest as k
    on {% for c in columns %}k.{{ c }} = t.{{ c }}{% if not loop.last %} and {% endif %}{% endfor %}
group by {% for c in columns %}t.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
having count(*) > 1
{%- else %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{%- endif %}
{% endtest %}

{#- Uniqueness of an incrementally built key, checked where it can break: each key written in
    the latest batch must occur once in the whole table (a failed delete of the stored row, or
    two rows in one batch). Earlier batches passed this test when they were written, so the
    cost is one probe of the table instead of a full group-by over history. -#}
{% test unique_in_latest_batch(model, column_name, batch_column) %}
with latest as (
    select l.{{ column_name }} as key_value
    from {{ model }} as l
    where l.{{ batch_column }} = (select max(b.{{ batch_column }}) from {{ model }} as b)
)

select t.{{ column_name }}, count(*) as n_rows
from {{ model }} as t
where t.{{ column_name }} in (select key_value from latest)
group by t.{{ column_name }}
having count(*) > 1
{% endtest %}

{#- Fails (or warns, by its severity) with every row of the model: for reports whose rows are
    problems, such as phasegate__unvalidated_events. -#}
{% test is_empty(model) %}
select * from {{ model }}
{% endtest %}
