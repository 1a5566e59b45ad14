{#- Fails with one row per duplicated combination of `columns`. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
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

{#- Events the incremental watermark never saw: received before the end of the as-of day but
    absent from the validated table, because a loader landed them with a received_at older than
    the lookback. Warns (one row per missed event) so they are counted, not silently lost; a
    `--full-refresh` of the validated table picks them up. Scoped to events received in the
    last `horizon_days` (phasegate__unvalidated_events_horizon_days, default 30): an anti-join
    over all history cost 40 s of a 1M-customer incremental day. Stored copies are looked up
    from a day before the horizon, so a duplicate redelivered more than a day after its
    original, across the horizon's start, can be reported too. -#}
{% test all_events_validated(model, column_name, events, horizon_days=none) %}
{%- set days = horizon_days if horizon_days is not none else var('phasegate__unvalidated_events_horizon_days', 30) -%}
{%- set as_of = phasegate.as_of_date() -%}
{%- set horizon = phasegate.days_before(as_of, days | int) -%}
{#- Selected through its events parent alone (dbt's eager test selection), the validated
    table may not exist yet: then there is nothing to compare. -#}
{%- if execute and adapter.get_relation(database=model.database, schema=model.schema, identifier=model.identifier) is none %}
select cast(null as {{ dbt.type_string() }}) as event_id where 1 = 0
{%- else %}
select e.event_id
from {{ events }} as e
where e.event_id is not null
    and e.received_at < {{ phasegate.end_of_day_literal(as_of) }}
    and e.received_at >= {{ phasegate.date_literal(horizon) }}
    and not exists (
        select 1 from {{ model }} as v
        where v.{{ column_name }} = e.event_id
            and v.received_at >= {{ phasegate.date_literal(phasegate.days_before(horizon, 1)) }}
    )
{%- endif %}
{% endtest %}
