{#- The fingerprint of what phasegate__customer_consents reads as of the end of day `d`:
    the consent changes and the ids of the customers signed up by then, and the channels. -#}
{% macro consents_fingerprint_sql(d) -%}
  {%- set eod = phasegate.end_of_day_literal(d) -%}
  {%- set consents -%}
    (select c.customer_id, c.channel, c.status, c.updated_at
     from {{ ref('int_consents_unioned') }} as c where c.updated_at < {{ eod }}) as r
  {%- endset -%}
  {%- set customers -%}
    (select cu.customer_id from {{ ref('int_customers_unioned') }} as cu where cu.signup_at < {{ eod }}) as r
  {%- endset -%}
  {{ phasegate.inputs_fingerprint_sql(
      [phasegate.rows_fingerprint(consents, ['customer_id', 'channel', 'status', 'updated_at']),
       phasegate.rows_fingerprint(customers, ['customer_id'])],
      'customer_consents v1|' ~ (phasegate.consent_channels() | join(','))) }}
{%- endmacro %}

{#- How an incremental run of phasegate__customer_consents proceeds, as
    {'since': SQL timestamp or none, 'recompute_all': bool, 'fingerprint': SQL}: `since` is
    the end of the stored evaluation date when only customers with a change after it need
    rewriting; otherwise every customer is recomputed. `fingerprint` is what this run stores.
    Asks the warehouse only in an incremental run of a table with the bookkeeping columns. -#}
{% macro consents_input_state(as_of) %}
  {%- set everything = {'since': none, 'recompute_all': true, 'fingerprint': '(' ~ phasegate.consents_fingerprint_sql(as_of) ~ ')'} -%}
  {%- if not (phasegate.stored_table_readable()) -%}
    {%- do return(everything) -%}
  {%- endif -%}
  {%- if not phasegate.has_columns(this, ['consents_as_of', 'inputs_fingerprint']) -%}
    {%- do return(everything) -%}
  {%- endif -%}
  {%- set stored_as_of = phasegate.as_date(run_query('select max(t.consents_as_of) from ' ~ this ~ ' as t').rows[0][0]) -%}
  {%- if stored_as_of is none or stored_as_of > as_of -%}
    {%- do return(everything) -%}
  {%- endif -%}
  {%- set row = run_query(
      'select (' ~ phasegate.consents_fingerprint_sql(stored_as_of) ~ ') as then_fp, ('
      ~ phasegate.consents_fingerprint_sql(as_of) ~ ') as now_fp, '
      ~ '(select min(t.inputs_fingerprint) from ' ~ this ~ ' as t where t.consents_as_of = '
      ~ phasegate.date_literal(stored_as_of) ~ ') as stored_min, '
      ~ '(select max(t.inputs_fingerprint) from ' ~ this ~ ' as t where t.consents_as_of = '
      ~ phasegate.date_literal(stored_as_of) ~ ') as stored_max').rows[0] -%}
  {%- set now_fp = ("'" ~ row[1] ~ "'") if row[1] is not none else 'cast(null as ' ~ dbt.type_string() ~ ')' -%}
  {%- set unchanged = row[0] is not none and row[0] == row[2] and row[0] == row[3] -%}
  {%- do return({
      'since': phasegate.end_of_day_literal(stored_as_of) if unchanged else none,
      'recompute_all': not unchanged,
      'fingerprint': now_fp}) -%}
{% endmacro %}

