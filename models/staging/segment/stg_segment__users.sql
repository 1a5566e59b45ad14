{{ config(enabled=phasegate.using_segment()) }}
{%- set cols = phasegate.relation_columns(source('segment', 'users')) %}
select
    cast(id as {{ dbt.type_string() }}) as customer_id,
    {{ phasegate.column_or_null(cols, 'created_at', dbt.type_timestamp()) }} as created_at,
    cast(received_at as {{ dbt.type_timestamp() }}) as received_at,
    {{ phasegate.column_or_null(cols, 'email', dbt.type_string()) }} as email,
    {{ phasegate.column_or_null(cols, 'phone', dbt.type_string()) }} as phone,
    {{ phasegate.column_or_null(cols, 'country', dbt.type_string()) }} as country
    {{- phasegate.passthrough_columns('segment_users') }}
from {{ source('segment', 'users') }}
