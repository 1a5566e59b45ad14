{#- Batch numbers of int_events_validated, which the models reading it incrementally (daily
    activity, quarantined events, the activity summary) use as their watermark.

    A batch number is at least the run's start time in epoch milliseconds, and above every
    batch already stored: numbers only grow, also across a rebuild. So a rebuilt events table
    is recognised downstream by its lowest batch lying above the highest one a model has read
    (numbering from 1 again after a rebuild went unnoticed when the model had only read
    batch 1). -#}
{% macro batch_number_floor() %}
    {%- set started = run_started_at -%}
    {{ return((started.timestamp() * 1000) | int) }}
{% endmacro %}

{#- Tables built before batch numbers were epoch milliseconds keep them in a 32-bit column,
    which the new numbers overflow. A pre-hook: widens `column` of an incremental model's
    stored table in place (one cheap ALTER) instead of asking for a full rebuild. -#}
{% macro widen_batch_column(column) %}
    {%- if execute and is_incremental() -%}
        {%- for c in adapter.get_columns_in_relation(this) -%}
            {%- if c.name | lower == column and c.dtype | lower in ('integer', 'int', 'int4', 'int32', 'smallint', 'int2', 'tinyint') -%}
                alter table {{ this }} alter column {{ column }} type {{ dbt.type_bigint() }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}

{#- Whether int_events_validated was rebuilt since a model read through batch `last_batch`:
    every batch left in it (`first_batch` is the lowest) is above that one. The one rule the
    models reading it by batch apply. -#}
{% macro validated_rebuilt_since(first_batch, last_batch) -%}
    {{ first_batch }} > {{ last_batch }}
{%- endmacro %}

{#- CTE definitions (comma-separated, for a model's `with`) shared by the models that read
    int_events_validated incrementally by its batch numbers:
    - `read_through.last_batch`: the highest batch `target` has read, from its `batch_column`
      (0 when it is empty);
    - `read_from.after_batch`: read the batches above this, as one plain bound so DuckDB
      pushes `batch > bound` into the scan and skips older batches' row groups (written as
      `batch > last or rebuilt` it read all 77 M events every run). It is 0 when the events
      table was rebuilt since `target` read it (every batch left in it is above the last one
      read), so everything is re-read.
    `reread_all`: the caller's stored rows are stale whatever the batches say (its settings
    changed); both bounds are then 0. -#}
{% macro validated_batch_bounds_ctes(target, validated, batch_column, reread_all=false) %}
read_through as (
    {%- if reread_all %}
    select cast(0 as {{ dbt.type_bigint() }}) as last_batch
    {%- else %}
    select coalesce(max(t.{{ batch_column }}), 0) as last_batch
    from {{ target }} as t
    {%- endif %}
),

read_from as (
    select
        case when {{ phasegate.validated_rebuilt_since('min(v.validated_batch)', 'max(r.last_batch)') }} then 0 else max(r.last_batch) end as after_batch
    from {{ validated }} as v
    cross join read_through as r
)
{% endmacro %}
