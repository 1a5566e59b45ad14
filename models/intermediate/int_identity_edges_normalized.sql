{{
    config(
        materialized='incremental',
        unique_key='edge_key',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        pre_hook="{{ phasegate.adopt_incremental_columns({
            'edge_key': dbt.type_string(), 'calling_code': dbt.type_string(), 'trunk_prefix': dbt.type_string(),
            'normalized_with': dbt.type_string(), 'edges_batch': dbt.type_bigint()}) }}",
        tags=['phasegate_incremental']
    )
}}
{#- Every link between two identifiers, from the identities source, the customers'
    own email and phone, and events carrying both a user id and an anonymous id, with values
    normalised (emails lowercased and trimmed, phones to E.164 using the linked customer's
    country) and `drop_reason` set for links that must not join anyone. One row per link and
    source (its latest observation).

    Incremental: every run reads all links (a cheap scan) but normalises only those that are
    new or whose observation time changed; a link that left the sources stays as a row with
    drop_reason 'link_removed' and its last values, so that stitching, which reads only the
    links changed since it last ran (edges_batch), sees it go. Changing the blocklist, or a
    phasegate version that normalises differently (normalized_with), rewrites every link. -#}
{%- set blocklist = phasegate.identity_blocklist() %}
{%- set normalized_with = phasegate.identity_normalized_with(blocklist) %}
{%- set key_columns = ['l.link_source', 'l.type_a', 'l.raw_a', 'l.type_b', 'l.raw_b', 'l.calling_code', 'l.trunk_prefix'] %}
with customers as (
    select customer_id, country, email, phone, signup_at from {{ ref('int_customers_unioned') }}
),

raw_links as (
    select identity_type_a as type_a, identity_value_a as raw_a,
           identity_type_b as type_b, identity_value_b as raw_b, observed_at, 'identities' as link_source
    from {{ ref('int_identities_unioned') }}
    union all
    select 'user_id', customer_id, 'email', email, signup_at, 'customers'
    from customers where email is not null
    union all
    select 'user_id', customer_id, 'phone', phone, signup_at, 'customers'
    from customers where phone is not null
    union all
    select 'user_id', user_id, 'anonymous_id', anonymous_id, observed_at, 'events'
    from {{ ref('int_event_identity_links_collected') }}
),

-- One equi-join on the user side: two conditional joins let DuckDB pick a nested-loop plan
-- that took minutes at 100k customers.
with_country as (
    select
        l.*,
        cc.calling_code,
        cc.trunk_prefix
    from raw_links as l
    left join customers as c
        on c.customer_id = case
            when l.type_a = 'user_id' then l.raw_a
            when l.type_b = 'user_id' then l.raw_b
        end
    left join {{ ref('phasegate__country_calling_codes') }} as cc on cc.country = c.country
),

{#- A link's key holds everything its normalisation reads (the country's calling code and
    trunk prefix too), so a customer moving country retires the old link and adds a new one. #}
links as (
    select
        {{ phasegate.surrogate_key(key_columns) }} as edge_key,
        l.link_source, l.type_a, l.raw_a, l.type_b, l.raw_b, l.calling_code, l.trunk_prefix,
        max(l.observed_at) as observed_at
    from with_country as l
    group by {{ key_columns | join(', ') }}
),

{%- if is_incremental() %}

batch as (
    select
        cast(
            greatest(coalesce(max(t.edges_batch), 0) + 1, {{ phasegate.batch_number_floor() }})
            as {{ dbt.type_bigint() }}
        ) as edges_batch
    from {{ this }} as t
),

stored as (
    select t.edge_key, t.observed_at, t.normalized_with
    from {{ this }} as t
    where {{ phasegate.link_is_current('t') }}
),

changed as (
    select l.*
    from links as l
    left join stored as t on t.edge_key = l.edge_key
    where t.edge_key is null
        or t.observed_at is distinct from l.observed_at
        or t.normalized_with <> {{ normalized_with }}
),

removed as (
    select t.edge_key
    from stored as t
    left join links as l on l.edge_key = t.edge_key
    where l.edge_key is null
),
{%- else %}

changed as (
    select * from links
),
{%- endif %}

{#- Phone digits, then the E.164 candidate, each computed once per row in its own select
    (normalize_phone inlined recomputes them several times per phone). #}
phone_digits as (
    select
        c.*,
        case when c.type_a = 'phone' then {{ phasegate.digits_only('c.raw_a') }} end as digits_a,
        case when c.type_b = 'phone' then {{ phasegate.digits_only('c.raw_b') }} end as digits_b
    from changed as c
),

phone_candidates as (
    select
        d.*,
        case when d.type_a = 'phone' then
            {{ phasegate.phone_e164_candidate('d.raw_a', 'd.digits_a', 'd.calling_code', 'd.trunk_prefix') }}
        end as phone_a,
        case when d.type_b = 'phone' then
            {{ phasegate.phone_e164_candidate('d.raw_b', 'd.digits_b', 'd.calling_code', 'd.trunk_prefix') }}
        end as phone_b
    from phone_digits as d
),

normalized as (
    select
        p.*,
        {{ phasegate.normalize_identifier('p.type_a', 'p.raw_a', none, none, phone_candidate='p.phone_a') }} as value_a,
        {{ phasegate.normalize_identifier('p.type_b', 'p.raw_b', none, none, phone_candidate='p.phone_b') }} as value_b
    from phone_candidates as p
),

side_reasons as (
    select
        n.*,
        {{ phasegate.identifier_problem('n.type_a', 'n.raw_a', 'n.value_a', blocklist) }} as reason_a,
        {{ phasegate.identifier_problem('n.type_b', 'n.raw_b', 'n.value_b', blocklist) }} as reason_b
    from normalized as n
)

select
    s.edge_key,
    s.type_a,
    s.raw_a,
    s.value_a,
    s.reason_a,
    s.type_b,
    s.raw_b,
    s.value_b,
    s.reason_b,
    s.observed_at,
    s.link_source,
    coalesce(s.reason_a, s.reason_b) as drop_reason,
    s.calling_code,
    s.trunk_prefix,
    {{ normalized_with }} as normalized_with,
    {%- if is_incremental() %}
    b.edges_batch
from side_reasons as s
cross join batch as b
{#- A link that left the sources: its last values stay (stitching recomputes the identifiers
    around them), marked removed, with no side reason (it is no guard's doing). #}
union all
select
    t.edge_key,
    t.type_a,
    t.raw_a,
    t.value_a,
    cast(null as {{ dbt.type_string() }}) as reason_a,
    t.type_b,
    t.raw_b,
    t.value_b,
    cast(null as {{ dbt.type_string() }}) as reason_b,
    t.observed_at,
    t.link_source,
    'link_removed' as drop_reason,
    t.calling_code,
    t.trunk_prefix,
    t.normalized_with,
    b.edges_batch
from {{ this }} as t
inner join removed as r on r.edge_key = t.edge_key
cross join batch as b
    {%- else %}
    cast({{ phasegate.batch_number_floor() }} as {{ dbt.type_bigint() }}) as edges_batch
from side_reasons as s
    {%- endif %}
