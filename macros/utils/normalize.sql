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
    code added. Anything else is null (not an identifier).

    In three parts, so that a model normalising many phones can compute each once per row in
    its own select: `phone_e164_candidate` reads `digits` (the raw value's digits,
    `digits_only`) several times, and `valid_e164` reads the candidate twice. Inlined, the
    digit regex ran several times per phone; split, the 1M-customer identity edges took
    15.5 s instead of 18.5 s. -#}
{% macro phone_e164_candidate(column, digits, calling_code, trunk_prefix) -%}
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
{%- endmacro %}

{% macro valid_e164(candidate) -%}
  case when {{ dbt.length(candidate) }} between 9 and 16 then {{ candidate }} end
{%- endmacro %}

{% macro normalize_phone(column, calling_code, trunk_prefix) -%}
  {{ phasegate.valid_e164(phasegate.phone_e164_candidate(column, phasegate.digits_only(column), calling_code, trunk_prefix)) }}
{%- endmacro %}

{#- `phone_candidate`: a column already holding phone_e164_candidate of this value, if the
    model computed it. -#}
{% macro normalize_identifier(type_column, value_column, calling_code, trunk_prefix, phone_candidate=none) -%}
  case {{ type_column }}
    when 'email' then {{ phasegate.normalize_email(value_column) }}
    {%- if phone_candidate %}
    when 'phone' then {{ phasegate.valid_e164(phone_candidate) }}
    {%- else %}
    when 'phone' then {{ phasegate.normalize_phone(value_column, calling_code, trunk_prefix) }}
    {%- endif %}
    else nullif(trim({{ value_column }}), '')
  end
{%- endmacro %}

{#- Why one side of an identity link cannot be used, or null when it can. `value_column` is
    the normalize_identifier of `raw_column`. A value is blocklisted if it or its trimmed raw
    form is listed (case-insensitively). For every type but phone a non-null normalized value
    lowercased is the trimmed raw value lowercased, so the raw form is looked up for phones
    only: looking it up for every link cost 2.5 s of the 1M-customer identity edges. -#}
{% macro identifier_problem(type_column, raw_column, value_column, blocklist) -%}
  case
    when {{ type_column }} not in ('user_id', 'anonymous_id', 'email', 'phone', 'device_id')
      then 'unknown_identifier_type'
    when {{ value_column }} is null then 'invalid_format'
    when lower({{ value_column }}) in ({{ phasegate.quoted_list(blocklist) }})
      or (case when {{ type_column }} = 'phone' then lower(trim({{ raw_column }})) end)
        in ({{ phasegate.quoted_list(blocklist) }})
      then 'blocklisted'
  end
{%- endmacro %}
