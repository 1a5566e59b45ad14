{{
    config(
        materialized='incremental',
        unique_key=['identifier_type', 'identifier_value'],
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        pre_hook="{{ phasegate.adopt_incremental_columns({
            'observed_at': dbt.type_timestamp(), 'stitched_batch': dbt.type_bigint(),
            'edges_read': dbt.type_bigint(), 'stitch_settings': dbt.type_string()}) }}",
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

    Incremental: an identifier's customer depends only on the graph within max_hops of it
    (the search never passes through another user_id). A run takes the links changed since it
    last read the edges (edges_batch above edges_read) and the customers added, removed or
    re-dated, recomputes only the identifiers within max_hops of them (the region), seeded
    from the stored rows bordering it, and re-ranks the customers those identifiers left or joined. An
    identifier that no longer maps keeps a row with null customer_id and hops (a tombstone),
    so the events it resolved are re-resolved. A rebuilt or renormalised edges table, or
    changed identity settings, recompute everything. Rows a run writes carry stitched_batch. -#}
{%- set max_hops = phasegate.identity_max_hops() %}
{%- set max_links = phasegate.identity_max_links() %}
{%- set settings = phasegate.identity_stitch_settings() %}
{%- set edges = ref('int_identity_edges_normalized') %}
with customers as (
    select customer_id, signup_at
    from {{ ref('int_customers_unioned') }}
    where customer_id is not null
),

usable_links as (
    select type_a, value_a, type_b, value_b, observed_at
    from {{ edges }}
    where drop_reason is null
)

{%- if is_incremental() %},

state as (
    select
        coalesce(max(t.stitched_batch), 0) as last_batch,
        coalesce(max(t.edges_read), 0) as edges_read,
        count(*) as stored_rows,
        count(case when t.stitch_settings = {{ settings }} then 1 end) as rows_with_settings
    from {{ this }} as t
),

mode as (
    select
        s.edges_read as after_edges_batch,
        s.stored_rows = 0
            or s.rows_with_settings < s.stored_rows
            or coalesce(e.first_batch > s.edges_read, false) as recompute_all,
        cast(greatest(s.last_batch + 1, {{ phasegate.batch_number_floor() }}) as {{ dbt.type_bigint() }}) as batch,
        coalesce(e.last_batch, s.edges_read) as edges_read
    from state as s
    cross join (
        select min(edges_batch) as first_batch, max(edges_batch) as last_batch from {{ edges }}
    ) as e
),

stored as (
    select t.identifier_type, t.identifier_value, t.customer_id, t.hops, t.observed_at
    from {{ this }} as t
    where t.hops is not null
),

{#- Links written since the last run, removed ones included (their last values). #}
changed_links as (
    select e.type_a, e.value_a, e.type_b, e.value_b
    from {{ edges }} as e
    cross join mode as m
    where e.edges_batch > m.after_edges_batch
),

seeds as (
    select type_a as identifier_type, value_a as identifier_value from changed_links where value_a is not null
    union
    select type_b, value_b from changed_links where value_b is not null
    union
    {#- Customers added or re-dated (a user_id is only ever reached at hop 0), and removed. #}
    select 'user_id', c.customer_id
    from customers as c
    left join stored as t
        on t.identifier_type = 'user_id' and t.identifier_value = c.customer_id
    where t.identifier_value is null
        or t.observed_at is distinct from c.signup_at
    union
    select t.identifier_type, t.identifier_value
    from stored as t
    left join customers as c on c.customer_id = t.identifier_value
    where t.hops = 0
        and c.customer_id is null
    union
    {#- Everything, when the whole map is recomputed. #}
    select l.type_a, l.value_a
    from usable_links as l
    cross join mode as m
    where m.recompute_all
    union
    select l.type_b, l.value_b
    from usable_links as l
    cross join mode as m
    where m.recompute_all
    union
    select 'user_id', c.customer_id
    from customers as c
    cross join mode as m
    where m.recompute_all
    union
    select t.identifier_type, t.identifier_value
    from stored as t
    cross join mode as m
    where m.recompute_all
),

region_0 as (
    select identifier_type, identifier_value from seeds
)

{#- Everything within max_hops of a seed, through any usable link, hubs included: a wider
    region is only slower, never wrong, and an identifier whose hub status flipped is a seed
    (its links changed), so all its neighbours are in. User ids are not entered: the search
    never passes through them. Each level reads the links touching the level before, from
    either side. #}
{%- for k in range(1, max_hops + 1) %},

region_{{ k }} as (
    select identifier_type, identifier_value from region_{{ k - 1 }}
    union
    select l.type_b, l.value_b
    from usable_links as l
    inner join region_{{ k - 1 }} as r on r.identifier_type = l.type_a and r.identifier_value = l.value_a
    where l.type_b <> 'user_id'
    union
    select l.type_a, l.value_a
    from usable_links as l
    inner join region_{{ k - 1 }} as r on r.identifier_type = l.type_b and r.identifier_value = l.value_b
    where l.type_a <> 'user_id'
)
{%- endfor %},

region as (
    select * from region_{{ max_hops }}
),

{#- Every usable link with an end in the region: all the links of a region identifier (its
    hub count), and every link into one. #}
region_links as (
    select l.*
    from usable_links as l
    inner join region as r on r.identifier_type = l.type_a and r.identifier_value = l.value_a
    union all
    select l.*
    from usable_links as l
    inner join region as r on r.identifier_type = l.type_b and r.identifier_value = l.value_b
),

{{ phasegate.identity_links_both_ways_ctes('region_links', 'linked') }},

hubs as (
    select l.from_type as identifier_type, l.from_value as identifier_value
    from linked as l
    inner join region as r on r.identifier_type = l.from_type and r.identifier_value = l.from_value
    where l.from_type <> 'user_id'
    group by l.from_type, l.from_value
    having count(*) > {{ max_links }}
),

{#- Links into the region. An identifier outside it that is a hub has no stored row (hubs
    link nobody), so the border below never starts from one. #}
graph as (
    select l.from_type, l.from_value, l.to_type, l.to_value, l.observed_at
    from linked as l
    inner join region as r on r.identifier_type = l.to_type and r.identifier_value = l.to_value
    left join hubs as hf on hf.identifier_type = l.from_type and hf.identifier_value = l.from_value
    left join hubs as ht on ht.identifier_type = l.to_type and ht.identifier_value = l.to_value
    where hf.identifier_value is null
      and ht.identifier_value is null
      and l.to_type <> 'user_id'
),

{#- Links into the region from stored identifiers outside it, whose places are unchanged. #}
border as (
    select g.to_type, g.to_value, s.customer_id, s.hops as from_hops, g.observed_at
    from graph as g
    left join region as x on x.identifier_type = g.from_type and x.identifier_value = g.from_value
    inner join stored as s on s.identifier_type = g.from_type and s.identifier_value = g.from_value
    where x.identifier_value is null
),

reached_0 as (
    select
        cast('user_id' as {{ dbt.type_string() }}) as identifier_type,
        c.customer_id as identifier_value,
        c.customer_id,
        0 as hops,
        c.signup_at as observed_at
    from customers as c
    inner join region as r on r.identifier_type = 'user_id' and r.identifier_value = c.customer_id
)
{%- else %},

{#- Each link once per direction, with its latest observation: the hub count and the search
    both read this. -#}
{{ phasegate.identity_links_both_ways_ctes('usable_links', 'linked') }},

hubs as (
    select from_type as identifier_type, from_value as identifier_value
    from linked
    where from_type <> 'user_id'
    group by from_type, from_value
    having count(*) > {{ max_links }}
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
      and l.to_type <> 'user_id'
),

reached_0 as (
    select
        cast('user_id' as {{ dbt.type_string() }}) as identifier_type,
        customer_id as identifier_value,
        customer_id,
        0 as hops,
        signup_at as observed_at
    from customers
)
{%- endif %}

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
            {%- if is_incremental() %}
            union all
            select b.to_type, b.to_value, b.customer_id, b.observed_at
            from border as b
            where b.from_hops = {{ k - 1 }}
            {%- endif %}
        ) as c
        left join reached_{{ k - 1 }} as x
            on x.identifier_type = c.identifier_type and x.identifier_value = c.identifier_value
        where x.identifier_value is null
    ) as frontier
    where rn = 1
)
{%- endfor %},

{%- if is_incremental() %}

{#- Customers an identifier of the region left or joined: all their identifiers are ranked
    again, the unchanged ones from their stored rows. #}
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
    r.identifier_type,
    r.identifier_value,
    r.customer_id,
    r.hops,
    r.identifier_rank,
    r.identifier_rank <= {{ phasegate.identity_max_identifiers_per_customer() }} as within_limit,
    r.observed_at,
    {%- if is_incremental() %}
    m.batch as stitched_batch,
    m.edges_read,
    {%- else %}
    cast({{ phasegate.batch_number_floor() }} as {{ dbt.type_bigint() }}) as stitched_batch,
    (select max(e.edges_batch) from {{ edges }} as e) as edges_read,
    {%- endif %}
    {{ settings }} as stitch_settings
from ranked as r
{%- if is_incremental() %}
cross join mode as m
{#- Identifiers of the region that no longer map. #}
union all
select
    s.identifier_type,
    s.identifier_value,
    cast(null as {{ dbt.type_string() }}) as customer_id,
    cast(null as {{ dbt.type_int() }}) as hops,
    cast(null as {{ dbt.type_bigint() }}) as identifier_rank,
    false as within_limit,
    cast(null as {{ dbt.type_timestamp() }}) as observed_at,
    m.batch as stitched_batch,
    m.edges_read,
    {{ settings }} as stitch_settings
from stored as s
inner join region as r on r.identifier_type = s.identifier_type and r.identifier_value = s.identifier_value
left join reached_{{ max_hops }} as n on n.identifier_type = s.identifier_type and n.identifier_value = s.identifier_value
cross join mode as m
where n.identifier_value is null
{%- endif %}
