{#- Every identifier an identity-stitching guard held back, and why: malformed or
    blocklisted values, hubs linked to too many identifiers, identifiers beyond a customer's
    maximum, and identifiers that touch more than one customer (kept on the nearest). The
    `links` column holds the link count (hubs), the number of customers touched, or the
    identifier's rank within its customer. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['identifier_type', 'identifier_value'],
        on_schema_change='sync_all_columns',
        pre_hook="{{ phasegate.guard_prepare() }}",
        post_hook="{{ phasegate.guard_finish() }}",
        tags=['phasegate_incremental']
    )
}}
{#- Incremental: an identifier's rows depend only on its own links and on the customers its
    neighbours map to. A run recomputes the identifiers at either end of an edge row written
    since it last read the edges (links added, re-observed or removed: edges keep a removed
    link's tombstone until this report has read it), those whose customer, place within the
    limit or rank beyond it changed since it last read the map (the map's
    customer_changed_batch; an identifier that stopped mapping stays there as a tombstone until
    read here), and every identifier linked to one of those. Their stored rows are replaced:
    an identifier without a guard any more is written once with a null guard, which the
    post-hook deletes. The table equals a rebuild; guard_mode (identity_guard_state.sql) says
    when a run rebuilds instead. -#}
{%- set max_links = phasegate.identity_max_links() %}
{%- set state = phasegate.guard_mode() %}
{%- set incremental = state.mode == 'incremental' %}
{#- The edges are read where used rather than through one `select *` CTE, which DuckDB
    materialised with every column (2 s at 1M customers). -#}
{%- set edges = ref('int_identity_edges_normalized') %}
{%- set map = ref('int_identifiers_stitched') %}
with stitched as (
    select identifier_type, identifier_value, customer_id, identifier_rank, within_limit
    from {{ map }}
    where customer_id is not null
),
{%- if incremental %}

{#- The identifiers to recompute, which the pre-hook (guard_prepare) wrote to a temporary
    table, so that the joins below are planned on its real size. -#}
affected as (
    select identifier_type, identifier_value from phasegate__guard_affected
),
{%- endif %}

dropped_links as (
    {%- for side in ['a', 'b'] %}
    select e.type_{{ side }} as identifier_type, coalesce(e.value_{{ side }}, e.raw_{{ side }}) as identifier_value,
        e.reason_{{ side }} as guard
    from {{ edges }} as e
    {%- if incremental %}
    inner join affected as x
        on x.identifier_type = e.type_{{ side }} and x.identifier_value = coalesce(e.value_{{ side }}, e.raw_{{ side }})
    {%- endif %}
    where e.reason_{{ side }} is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

{#- Usable links (in an incremental run, those with an end among the affected identifiers). #}
usable_links as (
    {%- if incremental %}
    {%- for side in ['a', 'b'] %}
    select e.type_a, e.value_a, e.type_b, e.value_b, e.observed_at
    from {{ edges }} as e
    inner join affected as x on x.identifier_type = e.type_{{ side }} and x.identifier_value = e.value_{{ side }}
    where e.drop_reason is null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- else %}
    select type_a, value_a, type_b, value_b, observed_at from {{ edges }} where drop_reason is null
    {%- endif %}
),

{#- Each usable link once per direction. -#}
{{ phasegate.identity_links_both_ways_ctes('usable_links', 'linked') }},

{#- Per identifier, in one aggregate: its usable links, and the least and greatest customer
    its neighbours map to. Only identifiers whose neighbours map to two or more customers
    are counted exactly below: a separate link count and a `count(distinct)` over every
    identifier cost ~6 s of the 1M-customer report. #}
neighbours as (
    select
        l.from_type as identifier_type,
        l.from_value as identifier_value,
        count(*) as links,
        min(s.customer_id) as least_customer,
        max(s.customer_id) as greatest_customer
    from linked as l
    {%- if incremental %}
    inner join affected as x on x.identifier_type = l.from_type and x.identifier_value = l.from_value
    {%- endif %}
    left join stitched as s
        on s.identifier_type = l.to_type and s.identifier_value = l.to_value and s.within_limit
    where l.from_type <> 'user_id'
    group by l.from_type, l.from_value
),

hubs as (
    select identifier_type, identifier_value, 'hub' as guard, links
    from neighbours
    where links > {{ max_links }}
),

{#- Identifiers (not hubs: those link nobody) adjacent to more than one customer. #}
shared as (
    select identifier_type, identifier_value
    from neighbours
    where links <= {{ max_links }}
      and least_customer <> greatest_customer
),

touching as (
    select sh.identifier_type, sh.identifier_value, count(distinct s.customer_id) as customers
    from shared as sh
    inner join linked as l on l.from_type = sh.identifier_type and l.from_value = sh.identifier_value
    inner join stitched as s
        on s.identifier_type = l.to_type and s.identifier_value = l.to_value and s.within_limit
    group by sh.identifier_type, sh.identifier_value
),

over_limit as (
    select s.identifier_type, s.identifier_value, 'over_customer_limit' as guard, s.identifier_rank as links
    from stitched as s
    {%- if incremental %}
    inner join affected as x on x.identifier_type = s.identifier_type and x.identifier_value = s.identifier_value
    {%- endif %}
    where not s.within_limit
)

select
    {{ phasegate.surrogate_key(['identifier_type', 'identifier_value', 'guard']) }} as guard_row_id,
    identifier_type,
    identifier_value,
    guard,
    max(links) as links,
    cast({{ state.edges_read }} as {{ dbt.type_bigint() }}) as edges_read,
    cast({{ state.map_read }} as {{ dbt.type_bigint() }}) as map_read,
    cast('{{ phasegate.guard_settings() }}' as {{ dbt.type_string() }}) as guard_settings,
    cast({{ state.batch }} as {{ dbt.type_bigint() }}) as rebuilt_batch
from (
    select identifier_type, identifier_value, guard, cast(null as {{ dbt.type_int() }}) as links
    from dropped_links
    union all
    select identifier_type, identifier_value, guard, links from hubs
    union all
    select identifier_type, identifier_value, 'shared_by_customers', customers from touching
    union all
    select identifier_type, identifier_value, guard, links from over_limit
    {%- if incremental %}
    union all
    {#- Clears the stored rows of an affected identifier without a guard now (post-hook). #}
    select identifier_type, identifier_value, cast(null as {{ dbt.type_string() }}), cast(null as {{ dbt.type_int() }})
    from affected
    {%- endif %}
) as guarded
group by identifier_type, identifier_value, guard
