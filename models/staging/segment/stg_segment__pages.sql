{{ config(enabled=phasegate.using_segment()) }}
{%- set cols = phasegate.relation_columns(source('segment', 'pages')) %}
select
    cast(id as {{ dbt.type_string() }}) as event_id,
    cast({{ adapter.quote('timestamp') }} as {{ dbt.type_timestamp() }}) as occurred_at,
    cast(received_at as {{ dbt.type_timestamp() }}) as received_at,
    cast(user_id as {{ dbt.type_string() }}) as user_id,
    cast(anonymous_id as {{ dbt.type_string() }}) as anonymous_id,
    {{ phasegate.column_or_null(cols, 'path', dbt.type_string()) }} as page_path
from {{ source('segment', 'pages') }}
