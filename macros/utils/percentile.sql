{% macro percentile(column, fraction) %}
  {{- return(adapter.dispatch('percentile', 'phasegate')(column, fraction)) -}}
{% endmacro %}

{% macro default__percentile(column, fraction) -%}
  percentile_cont({{ fraction }}) within group (order by {{ column }})
{%- endmacro %}

{% macro bigquery__percentile(column, fraction) -%}
  approx_quantiles({{ column }}, 100)[offset({{ (fraction * 100) | int }})]
{%- endmacro %}
