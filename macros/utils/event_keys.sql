{#- `event_key` of int_events_validated: a 64-bit hash of event_row_id where the engine has a
    cheap one (grouping_hash; elsewhere the id itself), stored so that a run looks up which of
    its new ids were stored before its window by reading 8 bytes per stored event instead of
    the id. -#}

{#- Pre-hook: a table built by an earlier phasegate version gets the column, filled for every
    stored row (a null key would hide its row from the lookup, and let a late copy of it
    count twice). -#}
{% macro adopt_event_key() %}
  {%- if phasegate.stored_table_readable() and not phasegate.has_columns(this, ['event_key']) -%}
    {{- return(adapter.dispatch('adopt_event_key', 'phasegate')()) -}}
  {%- endif -%}
{% endmacro %}

{% macro default__adopt_event_key() -%}
    alter table {{ this }} add column event_key {{ phasegate.row_key_type() }};
    update {{ this }} set event_key = {{ phasegate.grouping_hash('event_row_id') }};
{%- endmacro %}

{#- Committed at once: DuckDB cannot commit the rows the model then deletes from a table whose
    rows this update changed before the model's column sync (on_schema_change) altered it
    again in the same transaction. The model's statements run in the next one. -#}
{% macro duckdb__adopt_event_key() -%}
    {{ phasegate.default__adopt_event_key() }}
    commit;
    begin transaction;
{%- endmacro %}

{#- A select of `columns` (qualified by `t.`) from the rows of `relation` whose event_row_id is
    one of those in `keys` (a CTE with event_row_id and event_key, one row per id). -#}
{% macro stored_rows_with_keys(relation, keys, columns) %}
  {{- return(adapter.dispatch('stored_rows_with_keys', 'phasegate')(relation, keys, columns)) -}}
{% endmacro %}

{% macro default__stored_rows_with_keys(relation, keys, columns) -%}
select {{ columns | join(', ') }}
from {{ relation }} as t
inner join {{ keys }} as k on k.event_key = t.event_key and k.event_row_id = t.event_row_id
{%- endmacro %}

{#- The rows whose hash matches are found first by their position (rowid), reading only the
    hashes; then those rows alone are read, and compared by id. Joining on both columns at
    once reads every stored id. -#}
{% macro duckdb__stored_rows_with_keys(relation, keys, columns) -%}
select {{ columns | join(', ') }}
from {{ relation }} as t
where t.rowid in (
        select h.rowid
        from {{ relation }} as h
        where h.event_key in (select k.event_key from {{ keys }} as k)
    )
    and t.event_row_id in (select k.event_row_id from {{ keys }} as k)
{%- endmacro %}
