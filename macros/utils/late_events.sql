{#- Late events: usable events received more than phasegate__lookback_days after the day they
    occurred. Daily activity counts them per customer-day (`late_events`, with the lookback in
    `late_after_days`), and phasegate__late_events sums those counts. -#}

{#- Days between an event's day and the day it was received. -#}
{% macro days_late(occurred_at, received_at) -%}
  {{ dbt.datediff('cast(' ~ occurred_at ~ ' as date)', 'cast(' ~ received_at ~ ' as date)', 'day') }}
{%- endmacro %}

{#- Whether every row of daily activity `relation` counted its late events with the current
    lookback (true for an empty table; false when it lacks the columns or while not executing). -#}
{% macro late_events_counted_now(relation) %}
  {%- if not phasegate.has_columns(relation, ['late_events', 'late_after_days']) -%}
    {%- do return(false) -%}
  {%- endif -%}
  {%- set lookback = phasegate.lookback_days() -%}
  {%- set counted = run_query('select min(d.late_after_days), max(d.late_after_days) from ' ~ relation ~ ' as d').rows[0] -%}
  {%- do return(counted[0] is none or (counted[0] == lookback and counted[1] == lookback)) -%}
{% endmacro %}
