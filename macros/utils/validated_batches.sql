{#- CTE definitions (comma-separated, for a model's `with`) shared by the models that read
    int_events_validated incrementally by its batch numbers:
    - `read_through.last_batch`: the highest batch `target` has read, from its `batch_column`
      (0 when it is empty);
    - `read_from.after_batch`: read the batches above this, as one plain bound so DuckDB
      pushes `batch > bound` into the scan and skips older batches' row groups (written as
      `batch > last or rebuilt` it read all 77 M events every run). It is 0 when the events
      table was rebuilt, its batches restarting below the one stored, so everything is
      re-read. -#}
{% macro validated_batch_bounds_ctes(target, validated, batch_column) %}
read_through as (
    select coalesce(max(t.{{ batch_column }}), 0) as last_batch
    from {{ target }} as t
),

read_from as (
    select
        case when max(v.validated_batch) < max(r.last_batch) then 0 else max(r.last_batch) end as after_batch
    from {{ validated }} as v
    cross join read_through as r
)
{% endmacro %}
