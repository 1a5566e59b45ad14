{#- dbt run-operation phasegate.backfill_phases --args '{start_date: 2026-01-01, end_date: 2026-01-31}'
    Evaluates each date in [start_date, end_date) in order with the same SQL the models use,
    in one dbt process and one transaction (dbt commits when the operation ends, so a failed
    backfill leaves the history as it was). The date range must come after the daily activity is built through
    end_date (phasegate backfill does that first, and builds end_date itself last). -#}
{% macro backfill_phases(start_date, end_date) %}
  {%- set start = modules.datetime.date.fromisoformat(start_date | string) -%}
  {%- set stop = modules.datetime.date.fromisoformat(end_date | string) -%}
  {%- set transitions = ref('phasegate__phase_transitions') -%}
  {%- set scratch = api.Relation.create(
        database=transitions.database, schema=transitions.schema,
        identifier='phasegate__backfill_signals', type='table') -%}
  {%- set columns = ['transition_id', 'journey', 'customer_id', 'from_phase', 'to_phase',
        'transitioned_on', 'from_phase_entered_on', 'days_in_from_phase', 'signal_values'] -%}
  {%- for i in range((stop - start).days) -%}
    {%- set day = start + modules.datetime.timedelta(days=i) -%}
    {%- do run_query('drop table if exists ' ~ scratch) -%}
    {%- do run_query(dbt.create_table_as(false, scratch, phasegate.customer_signals_sql(
          day, ref('int_customer_days_aggregated'), ref('int_customers_unioned'),
          ref('int_consents_unioned')))) -%}
    {%- do run_query('delete from ' ~ transitions ~ ' where transitioned_on >= ' ~ phasegate.date_literal(day)) -%}
    {%- do run_query('insert into ' ~ transitions ~ ' (' ~ columns | join(', ') ~ ') '
          ~ phasegate.phase_transitions_sql(day, scratch, transitions)) -%}
    {%- do log('phasegate backfill: evaluated ' ~ day.isoformat(), info=true) -%}
  {%- endfor -%}
  {%- do run_query('drop table if exists ' ~ scratch) -%}
{% endmacro %}
