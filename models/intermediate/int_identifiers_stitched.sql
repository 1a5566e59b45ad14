{#- A table: the identity graph is read by several models and tests; as a view it would be rebuilt by each. -#}
{{ config(materialized='table') }}
{#- Identifier -> customer map. Customers are their user_ids; every other identifier joins
    the customer nearest to it in the identity graph (ties: the most recently observed link,
    then the lowest customer id), searching at most phasegate__identity_max_hops hops. Two
    user_ids are never merged. Hubs (identifiers linked to more than phasegate__identity_max_links
    others) link nobody, and a customer keeps at most
    phasegate__identity_max_identifiers_per_customer identifiers (nearest and newest first;
    the rest stay here with within_limit false and map no events);
    phasegate__identity_guard_report lists everything a guard held back. -#}
{%- set max_hops = phasegate.identity_max_hops() %}
with usable_links as (
    select type_a, value_a, type_b, value_b, observed_at
    from {{ ref('int_identity_edges_normalized') }}
    where drop_reason is null
),

directed as (
    select type_a as from_type, value_a as from_value, type_b as to_type, value_b as to_value, observed_at
    from usable_links
    union all
    select type_b, value_b, type_a, value_a, observed_at
    from usable_links
),

hubs as (
    select from_type as identifier_type, from_value as identifier_value
    from directed
    where from_type <> 'user_id'
    group by from_type, from_value
    having count(distinct {{ dbt.concat(['to_type', "':'", 'to_value']) }}) > {{ phasegate.identity_max_links() }}
),

graph as (
    select d.from_type, d.from_value, d.to_type, d.to_value, max(d.observed_at) as observed_at
    from directed as d
    where not exists (
            select 1 from hubs as h where h.identifier_type = d.from_type and h.identifier_value = d.from_value)
      and not exists (
            select 1 from hubs as h where h.identifier_type = d.to_type and h.identifier_value = d.to_value)
    group by d.from_type, d.from_value, d.to_type, d.to_value
),

reached_0 as (
    select
        cast('user_id' as {{ dbt.type_string() }}) as identifier_type,
        customer_id as identifier_value,
        customer_id,
        0 as hops,
        signup_at as observed_at
    from {{ ref('int_customers_unioned') }}
    where customer_id is not null
)

{%- for k in range(1, max_hops + 1) %},

reached_{{ k }} as (
    select * from reached_{{ k - 1 }}
    union all
    select identifier_type, identifier_value, customer_id, {{ k }} as hops, observed_at
    from (
        select
            g.to_type as identifier_type,
            g.to_value as identifier_value,
            r.customer_id,
            g.observed_at,
            row_number() over (
                partition by g.to_type, g.to_value order by g.observed_at desc, r.customer_id
            ) as rn
        from reached_{{ k - 1 }} as r
        inner join graph as g on g.from_type = r.identifier_type and g.from_value = r.identifier_value
        where r.hops = {{ k - 1 }}
          and g.to_type <> 'user_id'
          and not exists (
                select 1 from reached_{{ k - 1 }} as x
                where x.identifier_type = g.to_type and x.identifier_value = g.to_value)
    ) as frontier
    where rn = 1
)
{%- endfor %},

ranked as (
    select
        r.*,
        row_number() over (
            partition by r.customer_id order by r.hops, r.observed_at desc, r.identifier_type, r.identifier_value
        ) as identifier_rank
    from reached_{{ max_hops }} as r
)

select
    identifier_type,
    identifier_value,
    customer_id,
    hops,
    identifier_rank,
    identifier_rank <= {{ phasegate.identity_max_identifiers_per_customer() }} as within_limit
from ranked
