{#- The evaluation date. Everything point-in-time (signals, phases, backfills) is computed
    "as of" the end of this UTC day. Set `phasegate__as_of: 'YYYY-MM-DD'` to evaluate a past
    date, or the PHASEGATE_AS_OF environment variable (what the phasegate CLI does: dbt
    re-parses every file when --vars change, but not for an environment variable read only
    while executing); the var wins. Neither set means today (UTC). -#}
{% macro as_of_date() %}
  {% set raw = phasegate.as_of_setting() %}
  {% if raw is none or raw == '' %}
    {% do return(modules.datetime.datetime.utcnow().date()) %}
  {% endif %}
  {% if raw is string %}
    {% do return(modules.datetime.date.fromisoformat(raw[:10])) %}
  {% endif %}
  {% do return(raw) %}
{% endmacro %}

{#- The configured evaluation date as given, or none. The environment is read only at
    execution: read while parsing, dbt would record it and re-parse every model that uses
    this macro whenever the date changes. -#}
{% macro as_of_setting() %}
  {% set raw = var('phasegate__as_of', none) %}
  {% if (raw is none or raw == '') and execute %}
    {% set raw = env_var('PHASEGATE_AS_OF', '') %}
  {% endif %}
  {% do return(raw) %}
{% endmacro %}

{% macro date_literal(d) %}
  {%- do return("cast('" ~ d.isoformat() ~ "' as date)") -%}
{% endmacro %}

{% macro days_before(d, n) %}
  {%- do return(d - modules.datetime.timedelta(days=n | int)) -%}
{% endmacro %}

{#- A timestamp literal for the first instant of day `d`. -#}
{% macro start_of_day_literal(d) %}
  {%- do return("cast('" ~ d.isoformat() ~ " 00:00:00' as " ~ dbt.type_timestamp() ~ ")") -%}
{% endmacro %}

{#- A timestamp literal for the first instant after the as-of day, for half-open bounds. -#}
{% macro end_of_day_literal(d) %}
  {%- set next_day = d + modules.datetime.timedelta(days=1) -%}
  {%- do return("cast('" ~ next_day.isoformat() ~ " 00:00:00' as " ~ dbt.type_timestamp() ~ ")") -%}
{% endmacro %}

{#- A timestamp before any data: the watermark of an empty incremental table, so a range
    condition needs no `or ... is null` (which keeps DuckDB from pushing it into the scan). -#}
{% macro timestamp_floor() %}
  {%- do return("cast('1900-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")") -%}
{% endmacro %}
