{#- Consent changes from every source that carries them (only the generic contract does;
    without it no customer has consent, so nothing consent-gated is sent). -#}
{%- if phasegate.using_generic_source() %}
select customer_id, channel, status, updated_at from {{ ref('stg_phasegate__consents') }}
{%- else %}
select cast(null as {{ dbt.type_string() }}) as customer_id, cast(null as {{ dbt.type_string() }}) as channel,
       cast(null as {{ dbt.type_string() }}) as status, cast(null as {{ dbt.type_timestamp() }}) as updated_at
where 1 = 0
{%- endif %}
