{{ config(enabled=phasegate.using_generic_source()) }}
with source as (
    select * from {{ source('phasegate', 'consents') }}
)

select
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(channel as {{ dbt.type_string() }}) as channel,
    cast(status as {{ dbt.type_string() }}) as status,
    cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at
from source
