{#- Maintained by a diff, not rebuilt: each row carries `input_key`, a key of everything
    that decides it (the raw link, when and where it was seen, the linked customer's country
    and calling code, and a hash of this model's SQL, which holds the blocklist). A run
    counts the rows per key in the sources now and in the table: only the links whose count
    changed are normalised and written (delete+insert on the key), and a key now gone is
    written as a `link_removed` row (a tombstone, with the removed link's values) that takes
    its stored rows with it. The identifier map and the identity guard report read the
    tombstones to find what changed, and they are deleted once both have
    (purge_identity_tombstones); every other reader skips them. So the table, without
    its tombstones, always equals a rebuild, and on a day with a few new links a
    run normalises those instead of every link (7.8 M at 1M customers; BENCHMARKS.md). A new
    blocklist, phasegate version or name of a relation it reads changes every key, and so
    rewrites every row. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='input_key',
        on_schema_change='sync_all_columns',
        pre_hook="{{ phasegate.adopt_row_key('input_key', ['inputs_fingerprint']) }}",
        tags=['phasegate_incremental']
    )
}}
{#- Every link between two identifiers, from the identities source, the customers'
    own email and phone, and events carrying both a user id and an anonymous id, with values
    normalised (emails lowercased and trimmed, phones to E.164 using the linked customer's
    country) and `drop_reason` set for links that must not join anyone. -#}
{%- set blocklist = phasegate.identity_blocklist() %}
{#- The stored table can be diffed only once it has the key (a table built by an earlier
    phasegate version is emptied and given the key by the pre-hook, and rebuilt). -#}
{%- set diff = is_incremental() and 'input_key' in phasegate.relation_columns(this) %}
{%- set inputs %}
customers as (
    select * from {{ ref('int_customers_unioned') }}
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
        c.country,
        cc.calling_code,
        cc.trunk_prefix
    from raw_links as l
    left join customers as c
        on c.customer_id = case
            when l.type_a = 'user_id' then l.raw_a
            when l.type_b = 'user_id' then l.raw_b
        end
    left join {{ ref('phasegate__country_calling_codes') }} as cc on cc.country = c.country
)
{%- endset %}
{%- set normalize %}
{#- Phone digits, then the E.164 candidate, each computed once per row in its own select
    (normalize_phone inlined recomputes them several times per phone). #}
phone_digits as (
    select
        w.*,
        case when w.type_a = 'phone' then {{ phasegate.digits_only('w.raw_a') }} end as digits_a,
        case when w.type_b = 'phone' then {{ phasegate.digits_only('w.raw_b') }} end as digits_b
    from to_normalize as w
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
        p.type_a,
        p.raw_a,
        {{ phasegate.normalize_identifier('p.type_a', 'p.raw_a', none, none, phone_candidate='p.phone_a') }} as value_a,
        p.type_b,
        p.raw_b,
        {{ phasegate.normalize_identifier('p.type_b', 'p.raw_b', none, none, phone_candidate='p.phone_b') }} as value_b,
        p.observed_at,
        p.link_source,
        p.input_key
    from phone_candidates as p
),

side_reasons as (
    select
        n.*,
        {{ phasegate.identifier_problem('n.type_a', 'n.raw_a', 'n.value_a', blocklist) }} as reason_a,
        {{ phasegate.identifier_problem('n.type_b', 'n.raw_b', 'n.value_b', blocklist) }} as reason_b
    from normalized as n
)
{%- endset %}
{%- set sql_version = dbt.hash("'" ~ ((inputs ~ normalize) | replace("'", "''")) ~ "'") %}
{%- set batch -%}
    cast(
        {%- if diff %}
        (select greatest(coalesce(max(t.rebuilt_batch), 0) + 1, {{ phasegate.batch_number_floor() }}) from {{ this }} as t)
        {%- else %}
        {{ phasegate.batch_number_floor() }}
        {%- endif %}
        as {{ dbt.type_bigint() }})
{%- endset %}

with {{ inputs }},

keyed as (
    select
        w.*,
        {{ phasegate.row_key(['w.type_a', 'w.raw_a', 'w.type_b', 'w.raw_b', 'w.observed_at', 'w.link_source',
            'w.country', 'w.calling_code', 'w.trunk_prefix', sql_version]) }} as input_key
    from with_country as w
),
{%- if diff %}

{#- Keys whose number of rows differs between the sources and the table: new links, links
    gone, and a link listed once more or once less. #}
changed as (
    select
        coalesce(n.input_key, s.input_key) as input_key,
        coalesce(n.copies, 0) as copies_now
    from (select k.input_key, count(*) as copies from keyed as k group by k.input_key) as n
    full outer join (
        select t.input_key, count(*) as copies
        from {{ this }} as t
        where {{ phasegate.link_is_current('t') }}
        group by t.input_key
    ) as s on s.input_key = n.input_key
    where coalesce(n.copies, 0) <> coalesce(s.copies, 0)
),

to_normalize as (
    select k.*
    from keyed as k
    inner join changed as c on c.input_key = k.input_key
),
{%- else %}

to_normalize as (
    select * from keyed
),
{%- endif %}

{{ normalize }}

select
    type_a,
    raw_a,
    value_a,
    reason_a,
    type_b,
    raw_b,
    value_b,
    reason_b,
    observed_at,
    link_source,
    coalesce(reason_a, reason_b) as drop_reason,
    input_key,
    {{ batch }} as rebuilt_batch
from side_reasons
{%- if diff %}
union all
{#- Removed links: a tombstone per key, with the link's values, for the identifier map. #}
select distinct
    t.type_a,
    t.raw_a,
    t.value_a,
    cast(null as {{ dbt.type_string() }}),
    t.type_b,
    t.raw_b,
    t.value_b,
    cast(null as {{ dbt.type_string() }}),
    t.observed_at,
    t.link_source,
    'link_removed',
    c.input_key,
    {{ batch }}
from changed as c
inner join {{ this }} as t on t.input_key = c.input_key
where c.copies_now = 0
    and {{ phasegate.link_is_current('t') }}
{%- endif %}
