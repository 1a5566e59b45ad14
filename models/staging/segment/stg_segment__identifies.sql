{{ config(enabled=phasegate.using_segment()) }}
{%- set cols = phasegate.relation_columns(source('segment', 'identifies')) %}
select
    cast(id as {{ dbt.type_string() }}) as identify_id,
    cast(user_id as {{ dbt.type_string() }}) as user_id,
    cast(anonymous_id as {{ dbt.type_string() }}) as anonymous_id,
    {{ phasegate.column_or_null(cols, 'email', dbt.type_string()) }} as email,
    {{ phasegate.column_or_null(cols, 'phone', dbt.type_string()) }} as phone,
    {{ phasegate.column_or_null(cols, 'context_device_id', dbt.type_string()) }} as device_id,
    cast(received_at as {{ dbt.type_timestamp() }}) as received_at
from {{ source('segment', 'identifies') }}
