{#- A date from what a query returned for a date column: a date, a datetime or an ISO string
    (none stays none). -#}
{% macro as_date(value) %}
  {%- if value is none or value is string and value == '' -%}
    {%- do return(none) -%}
  {%- elif value is string -%}
    {%- do return(modules.datetime.date.fromisoformat(value[:10])) -%}
  {%- elif value.hour is defined -%}
    {%- do return(value.date()) -%}
  {%- endif -%}
  {%- do return(value) -%}
{% endmacro %}

{#- [first, last] date pairs, sorted and merged where they overlap or touch. -#}
{% macro merge_date_ranges(ranges) %}
  {%- set day = modules.datetime.timedelta(days=1) -%}
  {%- set merged = [] -%}
  {%- for r in ranges | sort -%}
    {%- if merged and r[0] <= merged[-1][1] + day -%}
      {%- set last = merged.pop() -%}
      {%- do merged.append([last[0], [last[1], r[1]] | max]) -%}
    {%- else -%}
      {%- do merged.append([r[0], r[1]]) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do return(merged) -%}
{% endmacro %}

{#- SQL: timestamp `col` falls on one of `days` (dates or ISO strings), as one range per run
    of consecutive days (a single range from the first to the last day beyond `max_ranges`);
    false when there is no day. -#}
{% macro on_days_condition(col, days, max_ranges=100) %}
  {%- set ranges = [] -%}
  {%- for d in days -%}
    {%- set day_value = phasegate.as_date(d) -%}
    {%- do ranges.append([day_value, day_value]) -%}
  {%- endfor -%}
  {%- set merged = phasegate.merge_date_ranges(ranges) -%}
  {%- if merged | length > max_ranges -%}
    {%- set merged = [[merged[0][0], merged[-1][1]]] -%}
  {%- endif -%}
  {%- set parts = [] -%}
  {%- for r in merged -%}
    {%- do parts.append('(' ~ col ~ ' >= ' ~ phasegate.start_of_day_literal(r[0]) ~ ' and ' ~ col
        ~ ' < ' ~ phasegate.end_of_day_literal(r[1]) ~ ')') -%}
  {%- endfor -%}
  {{- (parts | join(' or ')) if parts else '1 = 0' -}}
{% endmacro %}
