{{ config(enabled=phasegate.using_segment()) }}
{%- set cols = phasegate.relation_columns(source('segment', 'orders')) %}
{%- set amount = var('phasegate__segment_amount_column', 'revenue') %}
select
    cast(id as {{ dbt.type_string() }}) as event_id,
    {{ phasegate.column_or_null(cols, amount, dbt.type_numeric()) }} as amount
from {{ source('segment', 'orders') }}
