{#- SQL for the md5 of everything a holdout row depends on besides the customer id: the salt, the
    global and per-journey percentages, the journeys, and the bucket SQL this warehouse
    runs (so a changed bucket function in a new phasegate version reassigns too). -#}
{% macro holdout_settings_fingerprint() %}
  {%- set parts = [
      'v1',
      phasegate.holdout_salt(),
      phasegate.global_holdout_pct() | string,
      phasegate.hash_bucket('customer_id')] -%}
  {%- for jname, j in phasegate.journeys().items() -%}
    {%- do parts.append(jname ~ '=' ~ (j.get('holdout_pct', 0) | string)) -%}
  {%- endfor -%}
  {%- do return(dbt.hash("'" ~ (parts | join('|') | replace("'", "''")) ~ "'")) -%}
{% endmacro %}

{#- Post-hook of phasegate__holdout_assignments: rows of other settings, and of customers no
    longer in the source, go. `not exists`, which Postgres and DuckDB both plan as an
    anti-join (Postgres runs `not in` against a subquery too large for work_mem row by row). -#}
{% macro delete_departed_holdouts() -%}
  {%- if is_incremental() -%}
    delete from {{ this }} as t
    where t.settings_fingerprint is null
       or t.settings_fingerprint <> {{ phasegate.holdout_settings_fingerprint() }}
       or not exists (
           select 1 from {{ ref('int_customers_unioned') }} as c
           where c.customer_id = t.customer_id
       )
  {%- endif -%}
{% endmacro %}
