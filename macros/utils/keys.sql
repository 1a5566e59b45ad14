{#- A deterministic surrogate key: md5 over the fields joined with a separator that cannot
    be confused with a value, nulls spelled out so (null, 'a') and ('a', null) differ. -#}
{% macro surrogate_key(fields) %}
  {%- set parts = [] -%}
  {%- for f in fields -%}
    {%- do parts.append("coalesce(cast(" ~ f ~ " as " ~ dbt.type_string() ~ "), '_pg_null_')") -%}
    {%- if not loop.last -%}{%- do parts.append("'|'") -%}{%- endif -%}
  {%- endfor -%}
  {{ dbt.hash(dbt.concat(parts)) }}
{% endmacro %}

{#- A JSON object text from columns, portable across warehouses without JSON functions.
    Values are rendered as JSON strings (signals are numbers, dates and booleans, which never
    need escaping); nulls become JSON null. -#}
{% macro json_object(columns, relation_alias=none) %}
  {%- set parts = ["'{'"] -%}
  {%- for c in columns -%}
    {%- set ref_col = (relation_alias ~ '.' ~ c) if relation_alias else c -%}
    {%- do parts.append("'" ~ ('' if loop.first else ',') ~ '"' ~ c ~ '":' ~ "'") -%}
    {%- do parts.append(phasegate.json_value(ref_col)) -%}
  {%- endfor -%}
  {%- do parts.append("'}'") -%}
  {{ dbt.concat(parts) }}
{% endmacro %}

{% macro json_value(column) %}
  {{- return(adapter.dispatch('json_value', 'phasegate')(column)) -}}
{% endmacro %}

{% macro default__json_value(column) -%}
  case when {{ column }} is null then 'null'
       else {{ dbt.concat(["'\"'", "cast(" ~ column ~ " as " ~ dbt.type_string() ~ ")", "'\"'"]) }} end
{%- endmacro %}
