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
{#- Two more bookkeeping columns tell int_events_validated which stored events a rebuild can
    have re-resolved, so it need not look up all of them: `mapped_since_batch`, the build since
    which the identifier has had this customer and within_limit (carried from the previous
    build's row when both are equal), and `unmapped_batch`, the same in every row, the latest
    build in which an anonymous id that mapped a customer (within_limit) left the map
    altogether. A build without a previous one to compare with sets both to its own batch. -#}
{%- set state = phasegate.inputs_state(
    phasegate.inputs_fingerprint_sql([
        phasegate.stored_fingerprint(ref('int_identity_edges_normalized')),
        phasegate.rows_fingerprint(ref('int_customers_unioned'), ['customer_id', 'signup_at']),
    ], body),
    required_columns=['mapped_since_batch', 'unmapped_batch']) %}
{%- if state.unchanged %}
{{ phasegate.no_rows() }}
{%- elif not state.stored %}
select
    r.*,
    r.rebuilt_batch as mapped_since_batch,
    r.rebuilt_batch as unmapped_batch
from ({{ phasegate.rebuilt_rows(body, state) }}) as r
{%- else %}
with rebuilt as (
{{ phasegate.rebuilt_rows(body, state) }}
),

previous as (
    select t.identifier_type, t.identifier_value, t.customer_id, t.within_limit, t.mapped_since_batch, t.unmapped_batch
    from {{ this }} as t
    where t.rebuilt_batch = (select max(x.rebuilt_batch) from {{ this }} as x)
),

{#- Only anonymous ids resolve events (a user_id is its own customer). #}
unmapped_now as (
    select count(*) as identifiers
    from previous as p
    left join rebuilt as r
        on r.identifier_type = p.identifier_type and r.identifier_value = p.identifier_value
    where p.identifier_type = 'anonymous_id'
        and p.within_limit
        and r.identifier_value is null
)

select
    r.*,
    case
        when p.customer_id = r.customer_id and p.within_limit = r.within_limit then p.mapped_since_batch
        else r.rebuilt_batch
    end as mapped_since_batch,
    case
        when (select u.identifiers from unmapped_now as u) > 0 then r.rebuilt_batch
        else coalesce((select max(p.unmapped_batch) from previous as p), r.rebuilt_batch)
    end as unmapped_batch
from rebuilt as r
left join previous as p
    on p.identifier_type = r.identifier_type and p.identifier_value = r.identifier_value
{%- endif %}
