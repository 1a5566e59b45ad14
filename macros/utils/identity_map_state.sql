{#- Bookkeeping of the identifier map (int_identifiers_stitched), which an incremental run
    updates only around the links and customers that changed since it last read the edges:
    see that model. These macros decide how a run builds it, prepare the changed region in
    temporary tables (pre-hook) and clean up after it (post-hook). -#}

{#- Whether an edge row is a link the sources still hold (not a removed link's tombstone). -#}
{% macro link_is_current(alias) -%}
  ({{ alias }}.drop_reason is null or {{ alias }}.drop_reason <> 'link_removed')
{%- endmacro %}

{#- What the map depends on besides its inputs: the limits and the version of its rules. A
    change recomputes every row. -#}
{% macro stitch_settings() -%}
  {{- 'v2/' ~ phasegate.identity_max_hops() ~ '/' ~ phasegate.identity_max_links() ~ '/'
      ~ phasegate.identity_max_identifiers_per_customer() -}}
{%- endmacro %}

{#- A select of one row that changes whenever the map does: `map_batch`, its highest batch (any
    run that writes rows raises it), and `map_rows`, its live rows. Tombstones are not
    counted, so deleting them once read changes nothing. Two numbers rather than one text:
    validated events store them on every row, and writing a text constant into 77 M rows took
    4.3 s of a full build, two bigints 0.9 s. -#}
{% macro stitched_version(relation) -%}
  select max(s.rebuilt_batch) as map_batch, count(s.customer_id) as map_rows
  from {{ relation }} as s
{%- endmacro %}

{#- The columns the map gained with its incremental build; a table without them was built by an
    earlier phasegate version and is rebuilt. -#}
{% macro stitch_bookkeeping_columns() -%}
  {%- do return({'observed_at': dbt.type_timestamp(), 'edges_read': dbt.type_bigint(),
      'stitch_settings': dbt.type_string(), 'customer_changed_batch': dbt.type_bigint()}) -%}
{%- endmacro %}

{#- How this run builds the map:
    - `full`: every row, as on a first build; in an incremental run the pre-hook first empties
      the table (and adds the columns of an upgrade). Taken when the table is empty or from an
      earlier version, the settings changed, or every edge is newer than what the map read
      (edges rebuilt, or rewritten by a new blocklist: the removed links left no tombstones).
    - `incremental`: the region around the changes, prepared by the pre-hook.
    `edges_read` is the highest edge batch this run reads, `batch` the batch it writes. -#}
{% macro stitch_mode() %}
  {%- set edges = ref('int_identity_edges_normalized') -%}
  {%- set floor = phasegate.batch_number_floor() -%}
  {%- set state = {'mode': 'full', 'upgrade': false,
      'edges_read': '(select max(e.rebuilt_batch) from ' ~ edges ~ ' as e)', 'batch': floor | string} -%}
  {%- if not (execute and is_incremental()) -%}
    {%- do return(state) -%}
  {%- endif -%}
  {%- do state.update({'upgrade': not phasegate.has_columns(this, phasegate.stitch_bookkeeping_columns())}) -%}
  {%- set e = run_query('select min(e.rebuilt_batch), max(e.rebuilt_batch) from ' ~ edges ~ ' as e').rows[0] -%}
  {%- if e[1] is not none -%}
    {%- do state.update({'edges_read': e[1] | int | string}) -%}
  {%- endif -%}
  {%- if state.upgrade -%}
    {%- set m = run_query('select max(t.rebuilt_batch) from ' ~ this ~ ' as t').rows[0] -%}
    {%- do state.update({'batch': [((m[0] or 0) | int) + 1, floor] | max | string}) -%}
    {%- do return(state) -%}
  {%- endif -%}
  {%- set m = run_query('select max(t.edges_read), min(t.stitch_settings), max(t.stitch_settings), count(t.customer_id), max(t.rebuilt_batch) from '
      ~ this ~ ' as t').rows[0] -%}
  {%- do state.update({'batch': [((m[4] or 0) | int) + 1, floor] | max | string}) -%}
  {%- set settings = phasegate.stitch_settings() -%}
  {%- if m[3] == 0 or m[0] is none or m[1] != settings or m[2] != settings -%}
    {%- do return(state) -%}
  {%- endif -%}
  {%- if e[0] is not none and e[0] > m[0] -%}
    {%- do return(state) -%}
  {%- endif -%}
  {%- do state.update({'mode': 'incremental', 'after_batch': m[0] | int | string}) -%}
  {%- do return(state) -%}
{% endmacro %}

{#- A temporary table of a model's run (the map's and the guard report's pre-hooks), by a name
    its SQL can read; dropped by qualified name so that no permanent table of the same name is
    touched. -#}
{% macro temp_table(name) -%}
  {{- return(adapter.dispatch('temp_table', 'phasegate')(name)) -}}
{%- endmacro %}

{% macro default__temp_table(name) -%}{{ name }}{%- endmacro %}

{% macro duckdb__temp_table(name) -%}temp.main.{{ name }}{%- endmacro %}

{% macro postgres__temp_table(name) -%}pg_temp.{{ name }}{%- endmacro %}

{% macro drop_stitch_temps() -%}
  {%- for name in ['phasegate__stitch_region', 'phasegate__stitch_region_links'] %}
  drop table if exists {{ phasegate.temp_table(name) }};
  {%- endfor %}
{%- endmacro %}

{#- Pre-hook of the map. A full build in an incremental run empties the table first (an
    upgrade, adopt_columns, also adds the new columns and drops the fingerprint the map kept
    before). An incremental run computes the region:
    the identifiers whose customer can have changed, i.e. everything within max_hops of a
    seed. Seeds are both ends of every usable link written to edges since the map last read
    them and of every link removed since (edges keep a removed link as a tombstone with its
    ends until this model has read it), and the customers added, removed or re-dated. A region
    identifier is entered but not passed through when it is a user_id (the search never passes
    one), except a seed's own. Then every usable link with an end in the region: all the
    links of a region identifier (its hub count) and every link into one. Temporary tables
    rather than CTEs, so that the search below is planned on their real sizes. -#}
{% macro stitch_prepare() -%}
  {%- if execute and is_incremental() -%}
    {%- set state = phasegate.stitch_mode() -%}
    {%- set edges = ref('int_identity_edges_normalized') -%}
    {{ phasegate.empty_for_rebuild(state, phasegate.stitch_bookkeeping_columns()) }}
    {%- if state.mode == 'incremental' %}
      {%- set region = 'phasegate__stitch_region' -%}
      {{ phasegate.drop_stitch_temps() }}
        create temporary table {{ region }} as
        select identifier_type, identifier_value, 0 as lvl
        from (
            select e.type_a as identifier_type, e.value_a as identifier_value
            from {{ edges }} as e
            where e.rebuilt_batch > {{ state.after_batch }}
              and (e.drop_reason is null or e.drop_reason = 'link_removed')
              and e.value_a is not null
            union
            select e.type_b, e.value_b
            from {{ edges }} as e
            where e.rebuilt_batch > {{ state.after_batch }}
              and (e.drop_reason is null or e.drop_reason = 'link_removed')
              and e.value_b is not null
            union
            select 'user_id', c.customer_id
            from {{ ref('int_customers_unioned') }} as c
            left join {{ this }} as m
                on m.identifier_type = 'user_id' and m.identifier_value = c.customer_id and m.hops = 0
            where c.customer_id is not null
              and (m.identifier_value is null or m.observed_at is distinct from c.signup_at)
            union
            select m.identifier_type, m.identifier_value
            from {{ this }} as m
            left join {{ ref('int_customers_unioned') }} as c on c.customer_id = m.identifier_value
            where m.hops = 0
              and c.customer_id is null
        ) as seeds;
      {%- for k in range(1, phasegate.identity_max_hops() + 1) %}
        insert into {{ region }}
        select distinct n.identifier_type, n.identifier_value, {{ k }}
        from (
            select e.type_b as identifier_type, e.value_b as identifier_value
            from {{ edges }} as e
            inner join {{ region }} as r
                on r.identifier_type = e.type_a and r.identifier_value = e.value_a and r.lvl = {{ k - 1 }}
            where e.drop_reason is null
              and (r.identifier_type <> 'user_id' or r.lvl = 0)
            union all
            select e.type_a, e.value_a
            from {{ edges }} as e
            inner join {{ region }} as r
                on r.identifier_type = e.type_b and r.identifier_value = e.value_b and r.lvl = {{ k - 1 }}
            where e.drop_reason is null
              and (r.identifier_type <> 'user_id' or r.lvl = 0)
        ) as n
        left join {{ region }} as x
            on x.identifier_type = n.identifier_type and x.identifier_value = n.identifier_value
        where x.identifier_value is null;
      {%- endfor %}
        create temporary table phasegate__stitch_region_links as
        select e.type_a, e.value_a, e.type_b, e.value_b, e.observed_at
        from {{ edges }} as e
        inner join {{ region }} as r on r.identifier_type = e.type_a and r.identifier_value = e.value_a
        where e.drop_reason is null
        union
        select e.type_a, e.value_a, e.type_b, e.value_b, e.observed_at
        from {{ edges }} as e
        inner join {{ region }} as r on r.identifier_type = e.type_b and r.identifier_value = e.value_b
        where e.drop_reason is null;
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{#- Post-hook of the map: the tombstones every reader has read go (identity_guard_state.sql),
    and so do the temporary tables. -#}
{% macro stitch_finish() -%}
  {%- if execute and is_incremental() %}
    {{ phasegate.purge_identity_tombstones(this, phasegate.identity_guard_report_relation()) }}
    {{ phasegate.drop_stitch_temps() }}
  {%- endif -%}
{%- endmacro %}
