{#- Fingerprints of what a model read, and row keys.

    A fingerprint is the row count and the sum of a 64-bit hash of each row, per input, and
    the md5 of a text naming the model's settings: a change of data or settings changes it.
    phasegate__customer_consents stores the fingerprint of what it read as of its evaluation
    date. A run compares it with the fingerprint of the same inputs as of that date now:
    equal, only customers with a change after that date are rewritten; different (a
    backdated change, a settings change), every customer is (customer_consents.sql). Where no
    native 64-bit hash is known the fingerprint is null, which counts as changed.

    The identity models are kept by other means: edges by a diff on `row_key` (see
    int_identity_edges_normalized), the map and the guard report around the changed links
    (identity_map_state.sql, identity_guard_state.sql). Their upgrade and rebuild steps
    (adopt_columns, empty_for_rebuild) are at the end of this file. -#}

{#- A select of one text column `fingerprint` over the rows of `relation` (only `columns`
    are read). -#}
{% macro rows_fingerprint(relation, columns) %}
  {{- return(adapter.dispatch('rows_fingerprint', 'phasegate')(relation, columns)) -}}
{% endmacro %}

{% macro default__rows_fingerprint(relation, columns) -%}
  select cast(null as {{ dbt.type_string() }}) as fingerprint
{%- endmacro %}

{#- Where row_key is a 64-bit hash: the row count and the exact sum of the keys (a HUGEINT on
    DuckDB, numeric on Postgres: no overflow). -#}
{% macro summed_row_keys(relation, columns) -%}
  select cast(count(*) as {{ dbt.type_string() }}) || ':' || cast(coalesce(sum({{ phasegate.row_key(columns) }}), 0) as {{ dbt.type_string() }}) as fingerprint
  from {{ relation }}
{%- endmacro %}

{% macro duckdb__rows_fingerprint(relation, columns) -%}
  {{ phasegate.summed_row_keys(relation, columns) }}
{%- endmacro %}

{% macro postgres__rows_fingerprint(relation, columns) -%}
  {{ phasegate.summed_row_keys(relation, columns) }}
{%- endmacro %}

{#- A select of the combined fingerprint: each of `parts` (selects of one `fingerprint`
    column) and the md5 of `body`, joined with '/'. Null if any part is null (`||` keeps
    nulls, unlike concat()). -#}
{% macro inputs_fingerprint_sql(parts, body) -%}
  select
    {%- for p in parts %}
    (select f.fingerprint from ({{ p }}) as f) || '/' ||
    {%- endfor %}
    {{ dbt.hash("'" ~ (body | replace("'", "''")) ~ "'") }} as fingerprint
{%- endmacro %}

{#- A key for a row of `columns` (SQL expressions, nulls included), the same wherever the
    same values are: a 64-bit hash where the warehouse has one (two different rows sharing
    one is as unlikely as for the fingerprints above), else the md5 text. -#}
{% macro row_key(columns) %}
  {{- return(adapter.dispatch('row_key', 'phasegate')(columns)) -}}
{% endmacro %}

{% macro default__row_key(columns) -%}
  {%- set parts = [] -%}
  {%- for c in columns -%}
    {%- if not loop.first %}{% do parts.append("'|'") %}{% endif -%}
    {%- do parts.append("coalesce(cast(" ~ c ~ " as " ~ dbt.type_string() ~ "), '_null_')") -%}
  {%- endfor -%}
  {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}

{#- hash() of several values hashes each (nulls included) and combines them. -#}
{% macro duckdb__row_key(columns) -%}
  hash({{ columns | join(', ') }})
{%- endmacro %}

{% macro postgres__row_key(columns) -%}
  {%- set parts = [] -%}
  {%- for c in columns -%}
    {%- do parts.append("coalesce(cast(" ~ c ~ " as text), '_pg_null_')") -%}
  {%- endfor -%}
  hashtextextended({{ parts | join(" || '|' || ") }}, 0)
{%- endmacro %}

{#- The type row_key returns. -#}
{% macro row_key_type() %}
  {{- return(adapter.dispatch('row_key_type', 'phasegate')()) -}}
{% endmacro %}

{% macro default__row_key_type() -%}{{ dbt.type_string() }}{%- endmacro %}

{% macro duckdb__row_key_type() -%}ubigint{%- endmacro %}

{% macro postgres__row_key_type() -%}bigint{%- endmacro %}

{#- Pre-hook of a table maintained by a diff on `key_column` (a row_key): a table built by an
    earlier phasegate version, without it, is emptied (its rows have no key to diff on, so this
    run rebuilds it) and given the key in place of `dropped_columns`. -#}
{% macro adopt_row_key(key_column, dropped_columns=[]) -%}
  {{ phasegate.adopt_columns({key_column: phasegate.row_key_type()}, dropped_columns) }}
{%- endmacro %}

{#- Pre-hook of an incremental table whose bookkeeping changed in a phasegate upgrade: a stored
    table lacking any of `columns` (name -> type) gets them in place of `dropped_columns` and
    is emptied, so this run rebuilds it. -#}
{% macro adopt_columns(columns, dropped_columns=[]) -%}
  {%- if execute and is_incremental() -%}
    {%- set stored = phasegate.relation_columns(this) -%}
    {%- set missing = [] -%}
    {%- for name in columns if name not in stored %}{% do missing.append(name) %}{% endfor -%}
    {%- if missing -%}
      {#- Altered before the delete: DuckDB cannot commit rows deleted from the table's version
          that an alter later in the same transaction replaced. #}
      {%- for name in missing %}
      alter table {{ this }} add column {{ name }} {{ columns[name] }};
      {%- endfor %}
      {%- for c in dropped_columns if c in stored %}
      alter table {{ this }} drop column {{ c }};
      {%- endfor %}
      delete from {{ this }};
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{#- Pre-hook step of a table updated around what changed (the identifier map, the guard
    report), given its mode: a rebuild in an incremental run empties the table first, and an
    upgrade also adds the new bookkeeping `columns` in place of the fingerprint kept before. -#}
{% macro empty_for_rebuild(state, columns) -%}
  {%- if state.upgrade -%}
    {{ phasegate.adopt_columns(columns, ['inputs_fingerprint']) }}
  {%- elif state.mode == 'full' %}
        delete from {{ this }};
  {%- endif -%}
{%- endmacro %}
