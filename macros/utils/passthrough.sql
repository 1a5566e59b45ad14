{#- Extra source columns a user wants carried through staging, Fivetran-style:
    `phasegate__<table>_passthrough_columns: [col, {name: col, alias: new_name}]`. -#}
{% macro passthrough_columns(table) %}
  {%- for col in var('phasegate__' ~ table ~ '_passthrough_columns', []) -%}
    {%- if col is mapping %},
    {{ col.name }} as {{ col.get('alias', col.name) }}
    {%- else %},
    {{ col }}
    {%- endif -%}
  {%- endfor -%}
{% endmacro %}
