{#- Every identifier an identity-stitching guard held back, and why: malformed or
    blocklisted values, hubs linked to too many identifiers, identifiers beyond a customer's
    maximum, and identifiers that touch more than one customer (kept on the nearest). The
    `links` column holds the link count (hubs), the number of customers touched, or the
    identifier's rank within its customer. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        post_hook="{{ phasegate.delete_superseded_rows() }}",
        tags=['phasegate_incremental']
    )
}}
{#- Rebuilt only when the edges or the identifier map changed: see
    macros/utils/fingerprints.sql (the map's version: identity_map_state.sql). -#}
{%- set max_links = phasegate.identity_max_links() %}
{#- The edges are read where used rather than through one `select *` CTE, which DuckDB
    materialised with every column (2 s at 1M customers). -#}
{%- set edges = ref('int_identity_edges_normalized') %}
{%- set body %}
with stitched as (
    select * from {{ ref('int_identifiers_stitched') }}
),

dropped_links as (
    select type_a as identifier_type, coalesce(value_a, raw_a) as identifier_value, reason_a as guard
    from {{ edges }}
    where reason_a is not null
    union all
    select type_b, coalesce(value_b, raw_b), reason_b
    from {{ edges }}
    where reason_b is not null
),

usable_links as (
    select type_a, value_a, type_b, value_b, observed_at from {{ edges }} where drop_reason is null
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
    select identifier_type, identifier_value, 'over_customer_limit' as guard, identifier_rank as links
    from stitched
    where not within_limit
)

select
    {{ phasegate.surrogate_key(['identifier_type', 'identifier_value', 'guard']) }} as guard_row_id,
    identifier_type,
    identifier_value,
    guard,
    max(links) as links
from (
    select identifier_type, identifier_value, guard, cast(null as {{ dbt.type_int() }}) as links
    from dropped_links
    union all
    select identifier_type, identifier_value, guard, links from hubs
    union all
    select identifier_type, identifier_value, 'shared_by_customers', customers from touching
    union all
    select identifier_type, identifier_value, guard, links from over_limit
) as guarded
group by identifier_type, identifier_value, guard
{%- endset %}
{{ phasegate.rebuilt_when_inputs_change(body, [
    phasegate.rows_fingerprint(edges, ['input_key']),
    phasegate.stitched_version(ref('int_identifiers_stitched')),
]) }}
