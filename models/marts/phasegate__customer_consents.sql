{#- The consent status of every customer for every configured channel as of the evaluation
    date: the latest change wins; no record means no consent. Activation reads this, so a
    record is never sent to a channel the customer has not granted. -#}
{%- set eod = phasegate.end_of_day_literal(phasegate.as_of_date()) %}
with latest as (
    select
        c.customer_id,
        c.channel,
        c.status,
        c.updated_at,
        row_number() over (partition by c.customer_id, c.channel order by c.updated_at desc, c.status) as rn
    from {{ ref('int_consents_unioned') }} as c
    where c.updated_at < {{ eod }}
),

channels as (
    {%- for ch in phasegate.consent_channels() %}
    select cast('{{ ch }}' as {{ dbt.type_string() }}) as channel
    {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
)

select
    {{ phasegate.surrogate_key(['cu.customer_id', 'ch.channel']) }} as customer_consent_id,
    cu.customer_id,
    ch.channel,
    coalesce(l.status = 'granted', false) as is_granted,
    coalesce(l.status, 'none') as consent_status,
    l.updated_at as consent_updated_at
from {{ ref('int_customers_unioned') }} as cu
cross join channels as ch
left join latest as l on l.customer_id = cu.customer_id and l.channel = ch.channel and l.rn = 1
where cu.signup_at < {{ eod }}
