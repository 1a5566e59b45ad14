{#- Rebuild-when-inputs-change, for a table recomputed whole from inputs that change on few
    days (customer consents; the identity models are updated around what changed instead:
    edges by a diff on `row_key`, see int_identity_edges_normalized, the map and the guard
    report around the changed links, see identity_map_state.sql and identity_guard_state.sql).
    It is a computation that a daily run would otherwise redo from scratch although, on many
    days, nothing it reads changed.
    A model built this way stores, in every row, a fingerprint of everything it read
    (`inputs_fingerprint`) and the batch that wrote it (`rebuilt_batch`). An incremental run
    compares the fingerprint of its inputs now with the stored one: equal, it writes nothing;
    different (or unknown), it appends a full rebuild and its post-hook
    (`delete_superseded_rows`) removes the rows of earlier batches. So the table always
    equals a rebuild.

    A fingerprint is the row count and the sum of a 64-bit hash of each row, per input, and
    the md5 of the model's compiled select: a change of data, settings (blocklist, limits,
    hops) or phasegate's own SQL changes it. Where no native 64-bit hash is known the
    fingerprint is null and the model rebuilds every run, as a table would; so does a model
    whose last build was empty, having no row to keep the fingerprint in. -#}

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

{#- The stored fingerprint of a model built this way (what it last read), as a select of one
    column `fingerprint`; null when it is empty. -#}
{% macro stored_fingerprint(relation) -%}
  select max(s.inputs_fingerprint) as fingerprint from {{ relation }} as s
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

{#- Whether the model can skip this run, the fingerprint to store and the batch to write, as
    {'unchanged': bool, 'fingerprint': SQL, 'batch': SQL}. Only an incremental run of a
    table that has the bookkeeping columns asks the warehouse (one query); otherwise the
    model rebuilds and computes the fingerprint inline. A rebuild's batch is above every
    stored one and at least the run's start in epoch milliseconds. -#}
{% macro inputs_state(fingerprint_sql) %}
  {%- set floor = 'cast(' ~ phasegate.batch_number_floor() ~ ' as ' ~ dbt.type_bigint() ~ ')' -%}
  {%- set rebuild = {'unchanged': false, 'fingerprint': '(' ~ fingerprint_sql ~ ')', 'batch': floor} -%}
  {%- if not (execute and is_incremental()) -%}
    {%- do return(rebuild) -%}
  {%- endif -%}
  {%- set stored_columns = phasegate.relation_columns(this) -%}
  {%- if 'inputs_fingerprint' not in stored_columns or 'rebuilt_batch' not in stored_columns -%}
    {%- do return(rebuild) -%}
  {%- endif -%}
  {%- set row = run_query('select (' ~ fingerprint_sql ~ ') as now_fp, (' ~ phasegate.stored_fingerprint(this) ~ ') as stored_fp').rows[0] -%}
  {%- do return({
      'unchanged': row[0] is not none and row[0] == row[1],
      'fingerprint': ("'" ~ row[0] ~ "'") if row[0] is not none else 'cast(null as ' ~ dbt.type_string() ~ ')',
      'batch': 'cast((select greatest(coalesce(max(t.rebuilt_batch), 0) + 1, ' ~ floor ~ ') from ' ~ this ~ ' as t) as '
          ~ dbt.type_bigint() ~ ')'}) -%}
{% endmacro %}

{#- The model's select: nothing when its inputs are unchanged, else `body` with the two
    bookkeeping columns. -#}
{% macro rebuilt_when_inputs_change(body, fingerprint_parts) -%}
  {%- set state = phasegate.inputs_state(phasegate.inputs_fingerprint_sql(fingerprint_parts, body)) -%}
  {%- if state.unchanged %}
select * from {{ this }} as t where 1 = 0
  {%- else %}
select
    b.*,
    {{ state.fingerprint }} as inputs_fingerprint,
    {{ state.batch }} as rebuilt_batch
from (
{{ body }}
) as b
  {%- endif %}
{%- endmacro %}

{#- Post-hook: after a rebuild was appended, the rows of earlier batches go (rows of a table
    built before these columns existed have none). -#}
{% macro delete_superseded_rows() -%}
  {%- if is_incremental() -%}
    delete from {{ this }}
    where rebuilt_batch is null
       or rebuilt_batch < (select max(t.rebuilt_batch) from {{ this }} as t)
  {%- endif -%}
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
