{{ config(enabled=phasegate.using_generic_source()) }}
with source as (
    select * from {{ source('phasegate', 'customers') }}
)

select
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(signup_at as {{ dbt.type_timestamp() }}) as signup_at,
    cast(email as {{ dbt.type_string() }}) as email,
    cast(phone as {{ dbt.type_string() }}) as phone,
    cast(country as {{ dbt.type_string() }}) as country
    {{- phasegate.passthrough_columns('customers') }}
from source
