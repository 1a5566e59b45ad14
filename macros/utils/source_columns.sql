{#- Lower-cased column names of a relation (empty while parsing). Lets staging fill optional
    columns that a source lacks with typed nulls instead of failing. -#}
{% macro relation_columns(relation) %}
  {% if not execute %}{% do return([]) %}{% endif %}
  {% set names = [] %}
  {% for c in adapter.get_columns_in_relation(relation) %}{% do names.append(c.name | lower) %}{% endfor %}
  {% do return(names) %}
{% endmacro %}

{#- Whether `relation` has every column of `names` (a table from an earlier phasegate version
    may lack bookkeeping columns; false when not executing). -#}
{% macro has_columns(relation, names) %}
  {%- set stored = phasegate.relation_columns(relation) -%}
  {%- for name in names if name | lower not in stored -%}
    {%- do return(false) -%}
  {%- endfor -%}
  {%- do return(stored | length > 0) -%}
{% endmacro %}

{% macro column_or_null(columns, name, type) -%}
  {%- if name | lower in columns -%}
    cast({{ name }} as {{ type }})
  {%- else -%}
    cast(null as {{ type }})
  {%- endif -%}
{%- endmacro %}
