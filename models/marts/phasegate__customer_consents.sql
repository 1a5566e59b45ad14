{{
    config(
        materialized='incremental',
        unique_key='customer_consent_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook="delete from {{ this }} where consent_status is null",
        tags=['phasegate_incremental']
    )
}}
{#- The consent status of every customer for every configured channel as of the evaluation
    date: the latest change wins; no record means no consent. Activation reads this, so a
    record is never sent to a channel the customer has not granted.

    A customer's rows change only when a consent change or its signup becomes visible, so an
    incremental run whose evaluation date S' follows the stored one S rewrites only the
    customers with a consent change or a signup between the ends of S and S'. That holds
    while what was visible at S is still what it was: each run stores the fingerprint of its
    visible inputs (consents_input_state), and when the inputs visible at S no longer match
    it (a change landed late with an old timestamp, a customer left), when the date goes
    back, or when the channels change, every customer is recomputed and the rows of those
    no longer present are removed. -#}
{%- set as_of = phasegate.as_of_date() %}
{%- set eod = phasegate.end_of_day_literal(as_of) %}
{%- set state = phasegate.consents_input_state(as_of) %}
with
{% if state.since is not none -%}
{#- Customers whose rows can have changed since the stored evaluation date. #}
changed as (
    select c.customer_id
    from {{ ref('int_consents_unioned') }} as c
    where c.updated_at >= {{ state.since }} and c.updated_at < {{ eod }}
    union
    select cu.customer_id
    from {{ ref('int_customers_unioned') }} as cu
    where cu.signup_at >= {{ state.since }} and cu.signup_at < {{ eod }}
),
{%- endif %}

customers as (
    select cu.customer_id
    from {{ ref('int_customers_unioned') }} as cu
    {%- if state.since is not none %}
    inner join changed as ch on ch.customer_id = cu.customer_id
    {%- endif %}
    where cu.signup_at < {{ eod }}
),

latest as (
    select
        c.customer_id,
        c.channel,
        c.status,
        c.updated_at,
        row_number() over (partition by c.customer_id, c.channel order by c.updated_at desc, c.status) as rn
    from {{ ref('int_consents_unioned') }} as c
    {%- if state.since is not none %}
    inner join changed as ch on ch.customer_id = c.customer_id
    {%- endif %}
    where c.updated_at < {{ eod }}
),

channels as (
    {%- for ch in phasegate.consent_channels() %}
    select cast('{{ ch }}' as {{ dbt.type_string() }}) as channel
    {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
),

current_rows as (
    select
        {{ phasegate.surrogate_key(['cu.customer_id', 'ch.channel']) }} as customer_consent_id,
        cu.customer_id,
        ch.channel,
        coalesce(l.status = 'granted', false) as is_granted,
        coalesce(l.status, 'none') as consent_status,
        l.updated_at as consent_updated_at
    from customers as cu
    cross join channels as ch
    left join latest as l on l.customer_id = cu.customer_id and l.channel = ch.channel and l.rn = 1
)

select
    r.*,
    {{ phasegate.date_literal(as_of) }} as consents_as_of,
    cast({{ state.fingerprint }} as {{ dbt.type_string() }}) as inputs_fingerprint
from current_rows as r
{%- if state.recompute_all and is_incremental() %}
union all
{#- Stored rows of customers or channels no longer present: written back with a null status
    so that delete+insert removes them, then dropped by the post-hook. #}
select
    t.customer_consent_id,
    t.customer_id,
    t.channel,
    false as is_granted,
    cast(null as {{ dbt.type_string() }}) as consent_status,
    cast(null as {{ dbt.type_timestamp() }}) as consent_updated_at,
    {{ phasegate.date_literal(as_of) }} as consents_as_of,
    cast({{ state.fingerprint }} as {{ dbt.type_string() }}) as inputs_fingerprint
from {{ this }} as t
left join current_rows as r on r.customer_consent_id = t.customer_consent_id
where r.customer_consent_id is null
{%- endif %}
