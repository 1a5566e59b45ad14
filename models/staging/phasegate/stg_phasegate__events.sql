{{ config(enabled=phasegate.using_generic_source()) }}
with source as (
    select * from {{ source('phasegate', 'events') }}
)

select
    cast(event_id as {{ dbt.type_string() }}) as event_id,
    cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
    cast(received_at as {{ dbt.type_timestamp() }}) as received_at,
    cast(user_id as {{ dbt.type_string() }}) as user_id,
    cast(anonymous_id as {{ dbt.type_string() }}) as anonymous_id,
    cast(event_type as {{ dbt.type_string() }}) as event_type,
    cast(channel as {{ dbt.type_string() }}) as channel,
    cast(amount as {{ dbt.type_numeric() }}) as amount,
    cast(properties as {{ dbt.type_string() }}) as properties
    {{- phasegate.passthrough_columns('events') }}
from source
