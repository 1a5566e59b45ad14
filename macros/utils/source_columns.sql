{#- Lower-cased column names of a relation (empty while parsing). Lets staging fill optional
    columns that a source lacks with typed nulls instead of failing. -#}
{% macro relation_columns(relation) %}
  {% if not execute %}{% do return([]) %}{% endif %}
  {% set names = [] %}
  {% for c in adapter.get_columns_in_relation(relation) %}{% do names.append(c.name | lower) %}{% endfor %}
  {% do return(names) %}
{% endmacro %}

{% macro column_or_null(columns, name, type) -%}
  {%- if name | lower in columns -%}
    cast({{ name }} as {{ type }})
  {%- else -%}
    cast(null as {{ type }})
  {%- endif -%}
{%- endmacro %}
