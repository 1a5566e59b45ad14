{#- Per journey and current phase: size, value and recent conversion. KPIs whose signal is
    disabled in the registry are left out. -#}
{%- set names = phasegate.signal_names() %}
with membership as (
    select * from {{ ref('phasegate__phase_membership') }}
),

signals as (
    select * from {{ ref('phasegate__customer_signals') }}
)

select
    {{ phasegate.surrogate_key(['m.journey', 'm.phase']) }} as phase_kpi_id,
    m.journey,
    m.phase,
    count(*) as customers,
    {%- if 'revenue_lifetime' in names %}
    sum(s.revenue_lifetime) as revenue_lifetime,
    {%- endif %}
    {%- if 'revenue_last_90d' in names %}
    sum(s.revenue_last_90d) as revenue_last_90d,
    {%- endif %}
    {%- if 'orders_lifetime' in names %}
    avg(cast(s.orders_lifetime as {{ dbt.type_float() }})) as avg_orders_lifetime,
    {%- endif %}
    {%- if 'orders_last_30d' in names %}
    avg(case when s.orders_last_30d > 0 then 1.0 else 0.0 end) as conversion_rate_30d,
    {%- endif %}
    {%- if 'consent_email' in names %}
    avg(case when s.consent_email then 1.0 else 0.0 end) as email_consent_rate,
    {%- endif %}
    avg(cast(m.days_in_phase as {{ dbt.type_float() }})) as avg_days_in_phase,
    max(m.as_of_date) as as_of_date
from membership as m
left join signals as s on s.customer_id = m.customer_id
group by m.journey, m.phase
