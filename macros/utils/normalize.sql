{#- Identifier normalisation in SQL, shared by identity stitching and activation. -#}

{% macro normalize_email(column) -%}
  case
    when lower(trim({{ column }})) like '%_@_%._%' and trim({{ column }}) not like '% %'
      then lower(trim({{ column }}))
  end
{%- endmacro %}

{% macro digits_only(column) %}
  {{- return(adapter.dispatch('digits_only', 'phasegate')(column)) -}}
{% endmacro %}

{% macro default__digits_only(column) -%}
  regexp_replace({{ column }}, '[^0-9]', '', 'g')
{%- endmacro %}

{% macro snowflake__digits_only(column) -%}
  regexp_replace({{ column }}, '[^0-9]', '')
{%- endmacro %}

{% macro bigquery__digits_only(column) -%}
  regexp_replace({{ column }}, r'[^0-9]', '')
{%- endmacro %}

{#- E.164 ('+' and 8-15 digits) from a raw phone: an explicit '+' or '00' international
    prefix wins; otherwise the national trunk prefix is dropped (for NANP's '1' only from
    11-digit numbers, since local numbers never start with it) and the country's calling
    code added. Anything else is null (not an identifier). -#}
{% macro normalize_phone(column, calling_code, trunk_prefix) -%}
  {%- set digits = phasegate.digits_only(column) -%}
  {%- set e164 -%}
  case
    when trim({{ column }}) like '+%' then {{ dbt.concat(["'+'", digits]) }}
    when {{ digits }} like '00%' then {{ dbt.concat(["'+'", dbt.right(digits, dbt.length(digits) ~ ' - 2')]) }}
    when {{ calling_code }} is not null then {{ dbt.concat(["'+'", calling_code,
        "case when " ~ trunk_prefix ~ " is not null and " ~ trunk_prefix ~ " <> '' and "
        ~ digits ~ " like " ~ dbt.concat([trunk_prefix, "'%'"])
        ~ " and (" ~ trunk_prefix ~ " <> '1' or " ~ dbt.length(digits) ~ " = 11)"
        ~ " then " ~ dbt.right(digits, dbt.length(digits) ~ ' - ' ~ dbt.length(trunk_prefix))
        ~ " else " ~ digits ~ " end"]) }}
  end
  {%- endset -%}
  case when {{ dbt.length(e164) }} between 9 and 16 then {{ e164 }} end
{%- endmacro %}

{% macro normalize_identifier(type_column, value_column, calling_code, trunk_prefix) -%}
  case {{ type_column }}
    when 'email' then {{ phasegate.normalize_email(value_column) }}
    when 'phone' then {{ phasegate.normalize_phone(value_column, calling_code, trunk_prefix) }}
    else nullif(trim({{ value_column }}), '')
  end
{%- endmacro %}

{#- Why one side of an identity link cannot be used, or null when it can. -#}
{% macro identifier_problem(type_column, raw_column, value_column, blocklist) -%}
  case
    when {{ type_column }} not in ('user_id', 'anonymous_id', 'email', 'phone', 'device_id')
      then 'unknown_identifier_type'
    when {{ value_column }} is null then 'invalid_format'
    when lower({{ value_column }}) in ({{ phasegate.quoted_list(blocklist) }})
      or lower(trim({{ raw_column }})) in ({{ phasegate.quoted_list(blocklist) }})
      then 'blocklisted'
  end
{%- endmacro %}
