{#- Customers from every enabled source; a customer in both keeps the generic contract's
    row (it is the system of record) and falls back to Segment traits. -#}
{%- set parts = [] %}
{%- if phasegate.using_generic_source() %}
{%- do parts.append("select customer_id, signup_at, email, phone, country, 1 as source_rank from "
    ~ ref('stg_phasegate__customers')) %}
{%- endif %}
{%- if phasegate.using_segment() %}
{%- do parts.append("select customer_id, coalesce(created_at, received_at) as signup_at, email, phone, "
    ~ "country, 2 as source_rank from " ~ ref('stg_segment__users')) %}
{%- endif %}
select customer_id, signup_at, email, phone, country
from (
    select u.*, row_number() over (partition by u.customer_id order by u.source_rank) as rn
    from (
        {{ parts | join('\n        union all\n        ') }}
    ) as u
    where u.customer_id is not null
) as ranked
where rn = 1
