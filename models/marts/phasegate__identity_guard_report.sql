{#- Every identifier an identity-stitching guard held back, and why: malformed or
    blocklisted values, hubs linked to too many identifiers, identifiers beyond a customer's
    maximum, and identifiers that touch more than one customer (kept on the nearest). The
    `links` column holds the link count (hubs), the number of customers touched, or the
    identifier's rank within its customer. -#}
{%- set max_links = phasegate.identity_max_links() %}
with links as (
    select * from {{ ref('int_identity_edges_normalized') }}
),

stitched as (
    select * from {{ ref('int_identifiers_stitched') }}
),

dropped_links as (
    select type_a as identifier_type, coalesce(value_a, raw_a) as identifier_value, reason_a as guard
    from links
    where reason_a is not null
    union all
    select type_b, coalesce(value_b, raw_b), reason_b
    from links
    where reason_b is not null
),

usable_links as (
    select type_a, value_a, type_b, value_b, observed_at from links where drop_reason is null
),

{#- Each usable link once per direction. -#}
{{ phasegate.identity_links_both_ways_ctes('usable_links', 'linked') }},

usable as (
    select from_type as type_a, from_value as value_a, to_type as type_b, to_value as value_b
    from linked
),

link_counts as (
    select type_a as identifier_type, value_a as identifier_value, count(*) as links
    from usable
    where type_a <> 'user_id'
    group by type_a, value_a
),

hubs as (
    select identifier_type, identifier_value, 'hub' as guard, links
    from link_counts
    where links > {{ max_links }}
),

{#- An outer join rather than `not exists`: DuckDB turns that into a delim join costing
    seconds at 1M customers. -#}
touching as (
    -- customers adjacent to each identifier through a usable link
    select u.type_a as identifier_type, u.value_a as identifier_value,
           count(distinct s.customer_id) as customers
    from usable as u
    inner join stitched as s
        on s.identifier_type = u.type_b and s.identifier_value = u.value_b and s.within_limit
    left join hubs as h on h.identifier_type = u.type_a and h.identifier_value = u.value_a
    where u.type_a <> 'user_id'
      and h.identifier_value is null
    group by u.type_a, u.value_a
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
    select identifier_type, identifier_value, 'shared_by_customers', customers from touching where customers > 1
    union all
    select identifier_type, identifier_value, guard, links from over_limit
) as guarded
group by identifier_type, identifier_value, guard
