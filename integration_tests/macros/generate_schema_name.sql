{#- Seeds land in exactly the schema named by +schema, so the package's source vars can
    point at it on any warehouse. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
