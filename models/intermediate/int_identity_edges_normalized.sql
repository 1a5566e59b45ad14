{#- A table (the identity graph is read by several models and tests), rebuilt only when what
    it reads changed: see macros/utils/fingerprints.sql. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        post_hook="{{ phasegate.delete_superseded_rows() }}",
        tags=['phasegate_incremental']
    )
}}
{#- Every link between two identifiers, from the identities source, the customers'
    own email and phone, and events carrying both a user id and an anonymous id, with values
    normalised (emails lowercased and trimmed, phones to E.164 using the linked customer's
    country) and `drop_reason` set for links that must not join anyone. -#}
{%- set blocklist = phasegate.identity_blocklist() %}
{%- set body %}
with customers as (
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
        c.country
    from raw_links as l
    left join customers as c
        on c.customer_id = case
            when l.type_a = 'user_id' then l.raw_a
            when l.type_b = 'user_id' then l.raw_b
        end
),

{#- Phone digits, then the E.164 candidate, each computed once per row in its own select
    (normalize_phone inlined recomputes them several times per phone). #}
phone_digits as (
    select
        w.*,
        cc.calling_code,
        cc.trunk_prefix,
        case when w.type_a = 'phone' then {{ phasegate.digits_only('w.raw_a') }} end as digits_a,
        case when w.type_b = 'phone' then {{ phasegate.digits_only('w.raw_b') }} end as digits_b
    from with_country as w
    left join {{ ref('phasegate__country_calling_codes') }} as cc on cc.country = w.country
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
        p.link_source
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
    coalesce(reason_a, reason_b) as drop_reason
from side_reasons
{%- endset %}
{{ phasegate.rebuilt_when_inputs_change(body, [
    phasegate.rows_fingerprint(ref('int_identities_unioned'),
        ['identity_type_a', 'identity_value_a', 'identity_type_b', 'identity_value_b', 'observed_at']),
    phasegate.rows_fingerprint(ref('int_customers_unioned'), ['customer_id', 'signup_at', 'email', 'phone', 'country']),
    phasegate.rows_fingerprint(ref('int_event_identity_links_collected'), ['user_id', 'anonymous_id', 'observed_at']),
    phasegate.rows_fingerprint(ref('phasegate__country_calling_codes'), ['country', 'calling_code', 'trunk_prefix']),
]) }}
