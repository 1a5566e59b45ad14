{{ config(enabled=phasegate.using_generic_source()) }}
with source as (
    select * from {{ source('phasegate', 'identities') }}
)

select
    cast(identity_type_a as {{ dbt.type_string() }}) as identity_type_a,
    cast(identity_value_a as {{ dbt.type_string() }}) as identity_value_a,
    cast(identity_type_b as {{ dbt.type_string() }}) as identity_type_b,
    cast(identity_value_b as {{ dbt.type_string() }}) as identity_value_b,
    cast(observed_at as {{ dbt.type_timestamp() }}) as observed_at
from source
