{#- A table (read by several models and tests), updated around what changed: see below and
    macros/utils/identity_map_state.sql. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['identifier_type', 'identifier_value'],
        on_schema_change='sync_all_columns',
        pre_hook="{{ phasegate.stitch_prepare() }}",
        post_hook="{{ phasegate.stitch_finish() }}",
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
    phasegate__identity_guard_report lists everything a guard held back.

    Incremental: an identifier's customer depends only on the graph within max_hops of it, so
    a run recomputes only the region around the links and customers that changed since it
    last read the edges (the pre-hook, stitch_prepare), searching it from its customers and
    from the stored identifiers bordering it, whose places cannot have changed; then it ranks
    again every customer an identifier of the region left or joined. Identifiers of the region
    that no longer map are written as tombstones without a customer, kept until the guard
    report has read them (every other reader skips them). Apart from those, the table equals a
    rebuild; stitch_mode says when a run rebuilds instead. -#}
{%- set max_hops = phasegate.identity_max_hops() %}
{%- set state = phasegate.stitch_mode() %}
{%- set incremental = state.mode == 'incremental' %}
with customers as (
    select customer_id, signup_at
    from {{ ref('int_customers_unioned') }}
    where customer_id is not null
),
{%- if incremental %}

region as (
    select identifier_type, identifier_value from phasegate__stitch_region
),

{#- Every usable link with an end in the region (the pre-hook's). #}
links as (
    select type_a, value_a, type_b, value_b, observed_at from phasegate__stitch_region_links
),
{%- else %}

links as (
    select type_a, value_a, type_b, value_b, observed_at
    from {{ ref('int_identity_edges_normalized') }}
    where drop_reason is null
),
{%- endif %}

{#- Each link once per direction, with its latest observation: the hub count and the search
    both read this. -#}
{{ phasegate.identity_links_both_ways_ctes('links', 'linked') }},

{#- In an incremental run, the region's hubs (all their links are in `links`). One outside it
    has no stored row (hubs link nobody), so the border below never starts from one. #}
hubs as (
    select l.from_type as identifier_type, l.from_value as identifier_value
    from linked as l
    {%- if incremental %}
    inner join region as r on r.identifier_type = l.from_type and r.identifier_value = l.from_value
    {%- endif %}
    where l.from_type <> 'user_id'
    group by l.from_type, l.from_value
    having count(*) > {{ phasegate.identity_max_links() }}
),

{#- In an incremental run, the links into the region. Outer joins rather than `not exists`
    here and below: DuckDB turns those into delim joins that cost several seconds each at 1M
    customers. -#}
graph as (
    select l.from_type, l.from_value, l.to_type, l.to_value, l.observed_at
    from linked as l
    {%- if incremental %}
    inner join region as r on r.identifier_type = l.to_type and r.identifier_value = l.to_value
    {%- endif %}
    left join hubs as hf on hf.identifier_type = l.from_type and hf.identifier_value = l.from_value
    left join hubs as ht on ht.identifier_type = l.to_type and ht.identifier_value = l.to_value
    where hf.identifier_value is null
      and ht.identifier_value is null
),
{%- if incremental %}

{#- The stored rows, without the tombstones of identifiers that stopped mapping (rows without a
    customer, kept until the guard report has read them: identity_map_state.sql). #}
stored as (
    select
        t.identifier_type, t.identifier_value, t.customer_id, t.hops, t.observed_at,
        t.identifier_rank, t.within_limit, t.customer_changed_batch
    from {{ this }} as t
    where t.customer_id is not null
),

{#- Links into the region from stored identifiers outside it, at their stored hops. #}
border as (
    select g.to_type, g.to_value, s.customer_id, s.hops as from_hops, g.observed_at
    from graph as g
    left join region as x on x.identifier_type = g.from_type and x.identifier_value = g.from_value
    inner join stored as s on s.identifier_type = g.from_type and s.identifier_value = g.from_value
    where x.identifier_value is null
),
{%- endif %}

reached_0 as (
    select
        cast('user_id' as {{ dbt.type_string() }}) as identifier_type,
        c.customer_id as identifier_value,
        c.customer_id,
        0 as hops,
        c.signup_at as observed_at
    from customers as c
    {%- if incremental %}
    inner join region as r on r.identifier_type = 'user_id' and r.identifier_value = c.customer_id
    {%- endif %}
)

{%- for k in range(1, max_hops + 1) %},

reached_{{ k }} as (
    select * from reached_{{ k - 1 }}
    union all
    select identifier_type, identifier_value, customer_id, {{ k }} as hops, observed_at
    from (
        select
            c.identifier_type,
            c.identifier_value,
            c.customer_id,
            c.observed_at,
            row_number() over (
                partition by c.identifier_type, c.identifier_value order by c.observed_at desc, c.customer_id
            ) as rn
        from (
            select g.to_type as identifier_type, g.to_value as identifier_value, r.customer_id, g.observed_at
            from reached_{{ k - 1 }} as r
            inner join graph as g on g.from_type = r.identifier_type and g.from_value = r.identifier_value
            where r.hops = {{ k - 1 }}
              and g.to_type <> 'user_id'
            {%- if incremental %}
            union all
            select b.to_type, b.to_value, b.customer_id, b.observed_at
            from border as b
            where b.from_hops = {{ k - 1 }}
              and b.to_type <> 'user_id'
            {%- endif %}
        ) as c
        left join reached_{{ k - 1 }} as x
            on x.identifier_type = c.identifier_type and x.identifier_value = c.identifier_value
        where x.identifier_value is null
    ) as frontier
    where rn = 1
)
{%- endfor %},
{%- if incremental %}

{#- Customers an identifier of the region left or joined: all their identifiers are ranked
    again, those outside the region from their stored rows. #}
touched as (
    select customer_id from reached_{{ max_hops }}
    union
    select s.customer_id
    from stored as s
    inner join region as r on r.identifier_type = s.identifier_type and r.identifier_value = s.identifier_value
),

to_rank as (
    select * from reached_{{ max_hops }}
    union all
    select s.identifier_type, s.identifier_value, s.customer_id, s.hops, s.observed_at
    from stored as s
    inner join touched as tc on tc.customer_id = s.customer_id
    left join region as r on r.identifier_type = s.identifier_type and r.identifier_value = s.identifier_value
    where r.identifier_value is null
),
{%- else %}

to_rank as (
    select * from reached_{{ max_hops }}
),
{%- endif %}

ranked as (
    select
        r.*,
        row_number() over (
            partition by r.customer_id order by r.hops, r.observed_at desc, r.identifier_type, r.identifier_value
        ) as identifier_rank
    from to_rank as r
)

select
    n.identifier_type,
    n.identifier_value,
    n.customer_id,
    n.hops,
    n.identifier_rank,
    n.within_limit,
    n.observed_at,
    {%- if incremental %}
    case
        when p.identifier_value is not null
            and p.customer_id = n.customer_id
            and p.within_limit = n.within_limit
            and (n.within_limit or p.identifier_rank = n.identifier_rank)
            then p.customer_changed_batch
        else cast({{ state.batch }} as {{ dbt.type_bigint() }})
    end as customer_changed_batch,
    {%- else %}
    cast({{ state.batch }} as {{ dbt.type_bigint() }}) as customer_changed_batch,
    {%- endif %}
    cast({{ state.edges_read }} as {{ dbt.type_bigint() }}) as edges_read,
    cast('{{ phasegate.stitch_settings() }}' as {{ dbt.type_string() }}) as stitch_settings,
    cast({{ state.batch }} as {{ dbt.type_bigint() }}) as rebuilt_batch
from (
    select
        r.identifier_type,
        r.identifier_value,
        r.customer_id,
        r.hops,
        r.identifier_rank,
        r.identifier_rank <= {{ phasegate.identity_max_identifiers_per_customer() }} as within_limit,
        r.observed_at
    from ranked as r
) as n
{%- if incremental %}
{#- What the guard report reads of a row (its customer, whether it is within the limit, and
    the rank of one beyond it) keeps the batch that last changed it: the report recomputes
    around the identifiers changed since it last read the map. #}
left join stored as p on p.identifier_type = n.identifier_type and p.identifier_value = n.identifier_value
{#- Identifiers of the region that no longer map replace their stored rows with tombstones
    (no customer), which stay until the guard report has read them. #}
union all
select
    s.identifier_type,
    s.identifier_value,
    cast(null as {{ dbt.type_string() }}),
    cast(null as {{ dbt.type_int() }}),
    cast(null as {{ dbt.type_bigint() }}),
    false,
    cast(null as {{ dbt.type_timestamp() }}),
    cast({{ state.batch }} as {{ dbt.type_bigint() }}),
    cast({{ state.edges_read }} as {{ dbt.type_bigint() }}),
    cast('{{ phasegate.stitch_settings() }}' as {{ dbt.type_string() }}),
    cast({{ state.batch }} as {{ dbt.type_bigint() }})
from stored as s
inner join region as r on r.identifier_type = s.identifier_type and r.identifier_value = s.identifier_value
left join reached_{{ max_hops }} as n
    on n.identifier_type = s.identifier_type and n.identifier_value = s.identifier_value
where n.identifier_value is null
{%- endif %}
