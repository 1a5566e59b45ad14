{#- A table (read by several models and tests), rebuilt only when what it reads changed: see
    macros/utils/fingerprints.sql. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        post_hook="{{ phasegate.delete_superseded_rows() }}",
        tags=['phasegate_incremental']
    )
}}
{#- Identifier -> customer map. Customers are their user_ids; every other identifier joins
    the customer nearest to it in the identity graph (ties: the most recently observed link,
    then the lowest customer id), searching at most phasegate__identity_max_hops hops. Two
    user_ids are never merged. Hubs (identifiers linked to more than phasegate__identity_max_links
    others) link nobody, and a customer keeps at most
    phasegate__identity_max_identifiers_per_customer identifiers (nearest and newest first;
    the rest stay here with within_limit false and map no events);
    phasegate__identity_guard_report lists everything a guard held back. -#}
{%- set max_hops = phasegate.identity_max_hops() %}
{%- set body %}
with usable_links as (
    select type_a, value_a, type_b, value_b, observed_at
    from {{ ref('int_identity_edges_normalized') }}
    where drop_reason is null
),

{#- Each link once per direction, with its latest observation: the hub count and the search
    both read this. -#}
{{ phasegate.identity_links_both_ways_ctes('usable_links', 'linked') }},

hubs as (
    select from_type as identifier_type, from_value as identifier_value
    from linked
    where from_type <> 'user_id'
    group by from_type, from_value
    having count(*) > {{ phasegate.identity_max_links() }}
),

{#- Outer joins rather than `not exists` here and below: DuckDB turns those into delim joins
    that cost several seconds each at 1M customers. -#}
graph as (
    select l.from_type, l.from_value, l.to_type, l.to_value, l.observed_at
    from linked as l
    left join hubs as hf on hf.identifier_type = l.from_type and hf.identifier_value = l.from_value
    left join hubs as ht on ht.identifier_type = l.to_type and ht.identifier_value = l.to_value
    where hf.identifier_value is null
      and ht.identifier_value is null
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
        left join reached_{{ k - 1 }} as x on x.identifier_type = g.to_type and x.identifier_value = g.to_value
        where r.hops = {{ k - 1 }}
          and g.to_type <> 'user_id'
          and x.identifier_value is null
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
{%- endset %}
{{ phasegate.rebuilt_when_inputs_change(body, [
    phasegate.rows_fingerprint(ref('int_identity_edges_normalized'), ['input_key']),
    phasegate.rows_fingerprint(ref('int_customers_unioned'), ['customer_id', 'signup_at']),
]) }}
