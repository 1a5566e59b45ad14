{{ config(enabled=phasegate.using_suppressions()) }}
with source as (
    select * from {{ source('phasegate_governance', 'suppressions') }}
)

select
    cast(identifier_type as {{ dbt.type_string() }}) as identifier_type,
    cast(identifier_value as {{ dbt.type_string() }}) as identifier_value,
    cast(action as {{ dbt.type_string() }}) as action,
    cast(reason as {{ dbt.type_string() }}) as reason,
    cast(requested_at as {{ dbt.type_timestamp() }}) as requested_at
from source
