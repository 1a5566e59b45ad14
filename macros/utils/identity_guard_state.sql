{#- Bookkeeping of the identity guard report (phasegate__identity_guard_report), which an
    incremental run updates only around the identifiers whose links or customers changed since
    it last read the edges and the identifier map: see that model. These macros decide how a run
    builds it, write the identifiers it recomputes to a temporary table (pre-hook; temp_table()
    is in identity_map_state.sql), and delete the tombstones of removed links (in edges) and of
    identifiers that stopped mapping (in the map) once every reader has read them. -#}

{#- What the report depends on besides its inputs: its hub limit and the version of its rules.
    A change recomputes every row. -#}
{% macro guard_settings() -%}
  {{- 'g1/' ~ phasegate.identity_max_links() -}}
{%- endmacro %}

{#- The columns the report gained with its incremental build; a table without them was built
    by an earlier phasegate version and is rebuilt. -#}
{% macro guard_bookkeeping_columns() -%}
  {%- do return({'edges_read': dbt.type_bigint(), 'map_read': dbt.type_bigint(),
      'guard_settings': dbt.type_string()}) -%}
{%- endmacro %}

{#- How this run builds the report:
    - `full`: every row; in an incremental run the pre-hook first empties the table (and adds
      the columns of an upgrade). Taken when the table is empty (it then holds no bookkeeping)
      or from an earlier version, the settings changed, or every row of the edges or of the map
      is newer than what the report read (rebuilt, or rewritten whole: removed links and
      identifiers left no tombstones then).
    - `incremental`: the identifiers around what changed, after `edges_after` and `map_after`.
    `edges_read` and `map_read` are the highest batches this run reads, `batch` the one it
    writes. -#}
{% macro guard_mode() %}
  {%- set edges = ref('int_identity_edges_normalized') -%}
  {%- set map = ref('int_identifiers_stitched') -%}
  {%- set floor = phasegate.batch_number_floor() -%}
  {%- set state = {'mode': 'full', 'upgrade': false,
      'edges_read': '(select max(e.rebuilt_batch) from ' ~ edges ~ ' as e)',
      'map_read': '(select max(m.rebuilt_batch) from ' ~ map ~ ' as m)', 'batch': floor | string} -%}
  {%- if not (execute and is_incremental()) -%}
    {%- do return(state) -%}
  {%- endif -%}
  {%- do state.update({'upgrade': not phasegate.has_columns(this, phasegate.guard_bookkeeping_columns())}) -%}
  {%- set read = run_query('select (select min(e.rebuilt_batch) from ' ~ edges ~ ' as e), (select max(e.rebuilt_batch) from '
      ~ edges ~ ' as e), (select min(m.rebuilt_batch) from ' ~ map ~ ' as m), (select max(m.rebuilt_batch) from '
      ~ map ~ ' as m)').rows[0] -%}
  {%- if read[1] is not none -%}{%- do state.update({'edges_read': read[1] | int | string}) -%}{%- endif -%}
  {%- if read[3] is not none -%}{%- do state.update({'map_read': read[3] | int | string}) -%}{%- endif -%}
  {%- set g = run_query('select max(t.rebuilt_batch)' ~ ('' if state.upgrade else
      ', max(t.edges_read), max(t.map_read), min(t.guard_settings), max(t.guard_settings), count(*)')
      ~ ' from ' ~ this ~ ' as t').rows[0] -%}
  {%- do state.update({'batch': [((g[0] or 0) | int) + 1, floor] | max | string}) -%}
  {%- if state.upgrade or g[5] == 0 or g[1] is none or g[2] is none -%}
    {%- do return(state) -%}
  {%- endif -%}
  {%- set settings = phasegate.guard_settings() -%}
  {%- if g[3] != settings or g[4] != settings -%}
    {%- do return(state) -%}
  {%- endif -%}
  {%- if (read[0] is not none and read[0] > g[1]) or (read[2] is not none and read[2] > g[2]) -%}
    {%- do return(state) -%}
  {%- endif -%}
  {%- do state.update({'mode': 'incremental', 'edges_after': g[1] | int | string, 'map_after': g[2] | int | string}) -%}
  {%- do return(state) -%}
{% endmacro %}

{#- Pre-hook of the report: a full build in an incremental run empties the table first. An
    incremental run writes the identifiers it recomputes to a temporary table: both ends of
    every edge row written since the report last read the edges, every identifier whose row in
    the map changed since it last read the map, and every identifier linked to one of those.
    As a CTE, DuckDB estimated them at millions (a union of five selects) and built the hash
    tables of their joins on all 7.8 M edges instead (1M customers: the report's select took
    4.4-4.7 s, against 2.0-2.2 s and 0.9-1.2 s for this table). -#}
{% macro guard_prepare() -%}
  {%- if execute and is_incremental() -%}
    {%- set state = phasegate.guard_mode() -%}
    {{ phasegate.empty_for_rebuild(state, phasegate.guard_bookkeeping_columns()) }}
    {%- if state.mode == 'incremental' %}
      {%- set edges = ref('int_identity_edges_normalized') -%}
      {%- set map = ref('int_identifiers_stitched') %}
        drop table if exists {{ phasegate.temp_table('phasegate__guard_affected') }};
        create temporary table phasegate__guard_affected as
        with remapped as (
            select m.identifier_type, m.identifier_value
            from {{ map }} as m
            where m.customer_changed_batch > {{ state.map_after }}
        )
        select e.type_a as identifier_type, coalesce(e.value_a, e.raw_a) as identifier_value
        from {{ edges }} as e
        where e.rebuilt_batch > {{ state.edges_after }}
        union
        select e.type_b, coalesce(e.value_b, e.raw_b)
        from {{ edges }} as e
        where e.rebuilt_batch > {{ state.edges_after }}
        union
        select identifier_type, identifier_value from remapped
        union
        select e.type_b, e.value_b
        from {{ edges }} as e
        inner join remapped as r on r.identifier_type = e.type_a and r.identifier_value = e.value_a
        where e.drop_reason is null
        union
        select e.type_a, e.value_a
        from {{ edges }} as e
        inner join remapped as r on r.identifier_type = e.type_b and r.identifier_value = e.value_b
        where e.drop_reason is null;
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{#- Post-hook of the report: every row takes what this run read (its bookkeeping is kept in its
    rows, and the run may have written none but those clearing an identifier), then the rows
    that only cleared an identifier's stored rows go, and so do the tombstones it has read. -#}
{% macro guard_finish() -%}
  {%- if execute and is_incremental() %}
    drop table if exists {{ phasegate.temp_table('phasegate__guard_affected') }};
    update {{ this }}
    set edges_read = (select max(t.edges_read) from {{ this }} as t),
        map_read = (select max(t.map_read) from {{ this }} as t);
    delete from {{ this }} where guard is null;
  {%- endif %}
  {%- if execute %}
    {{ phasegate.purge_identity_tombstones(ref('int_identifiers_stitched'), {'known': true, 'relation': this}) }}
  {%- endif -%}
{%- endmacro %}

{#- The guard report's relation, for the map's post-hook: `known` is false when the project's
    graph cannot tell (a tool that loads the project without it), `relation` none when the
    report is disabled or not built yet. Looked up by name rather than ref(): the report is
    built from the map, and a ref would make the map depend on it. -#}
{% macro identity_guard_report_relation() -%}
  {%- set found = {'map': false, 'relation': none} -%}
  {%- if execute and graph is defined and graph.nodes is defined -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.package_name == 'phasegate' -%}
      {%- if node.name == 'int_identifiers_stitched' -%}
        {%- do found.update({'map': true}) -%}
      {%- elif node.name == 'phasegate__identity_guard_report' -%}
        {%- do found.update({'relation': adapter.get_relation(database=node.database, schema=node.schema,
            identifier=node.alias)}) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {%- do return({'known': found.map, 'relation': found.relation}) -%}
{%- endmacro %}

{#- Deletes the tombstones every reader has read: removed links in edges (read by the map and
    the report, each up to its stored edges_read) and identifiers that stopped mapping in the
    map (read by the report, up to its map_read). A report that is disabled, not built yet,
    from an earlier version or empty will rebuild whole and reads none; when the graph cannot
    tell (guard.known false) the report's own post-hook deletes them. -#}
{% macro purge_identity_tombstones(map, guard) -%}
  {%- if guard.known -%}
    {%- set edges = ref('int_identity_edges_normalized') -%}
    {%- set reader = none -%}
    {%- if guard.relation is not none and 'map_read' in phasegate.relation_columns(guard.relation) -%}
      {%- set reader = guard.relation -%}
    {%- endif %}
    delete from {{ map }}
    where customer_id is null
    {%- if reader is not none %}
      and rebuilt_batch <= coalesce((select max(g.map_read) from {{ reader }} as g), rebuilt_batch)
    {%- endif %};
    delete from {{ edges }}
    where drop_reason = 'link_removed'
      and rebuilt_batch <= (select max(t.edges_read) from {{ map }} as t)
    {%- if reader is not none %}
      and rebuilt_batch <= coalesce((select max(g.edges_read) from {{ reader }} as g), rebuilt_batch)
    {%- endif %};
  {%- endif -%}
{%- endmacro %}
