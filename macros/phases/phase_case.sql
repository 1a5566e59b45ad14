{#- Phase semantics (see README "Journeys"). For one journey and one evaluation date:
    1. Candidate phase: first, phases whose `from` lists the current phase (in config order),
       then every phase in config order; a phase with `from` is open only to customers coming
       from those phases, to customers already in it, and to customers with no phase yet.
       The first open phase whose `when` holds wins; none -> `default_phase`.
    2. Dwell: a customer leaves a phase only after `min_dwell_days` in it (the phase's own
       value, else the journey's), which stops flapping around a threshold.
    3. Re-entry is allowed: a customer may return to a phase they left. -#}
{% macro phase_candidate_case(journey, prev_col) %}
  case
  {%- for p in journey.phases if p.get('from') %}
    when {{ prev_col }} in ({{ phasegate.quoted_list(p['from']) }}) and ({{ p.when }}) then '{{ p.name }}'
  {%- endfor %}
  {%- for p in journey.phases %}
    {%- if p.get('from') %}
    when ({{ prev_col }} is null or {{ prev_col }} = '{{ p.name }}') and ({{ p.when }}) then '{{ p.name }}'
    {%- else %}
    when ({{ p.when }}) then '{{ p.name }}'
    {%- endif %}
  {%- endfor %}
    else '{{ journey.default_phase }}'
  end
{% endmacro %}

{% macro phase_dwell_days_case(journey, prev_col) %}
  {%- set default_dwell = journey.get('min_dwell_days', 0) | int -%}
  {%- set overrides = journey.phases | selectattr('min_dwell_days', 'defined') | list -%}
  {%- if overrides | length == 0 -%}
    {{ default_dwell }}
  {%- else -%}
  case {{ prev_col }}
    {%- for p in overrides %}
    when '{{ p.name }}' then {{ p.min_dwell_days | int }}
    {%- endfor %}
    else {{ default_dwell }}
  end
  {%- endif -%}
{% endmacro %}

{% macro quoted_list(values) %}
  {%- set values = [values] if values is string else values -%}
  {%- set quoted = [] -%}
  {%- for v in values %}{% do quoted.append("'" ~ (v | string | replace("'", "''")) ~ "'") %}{% endfor -%}
  {{- quoted | join(', ') -}}
{% endmacro %}

{#- The signal columns a journey's predicates read; their values are recorded on each
    transition as the evidence for it. -#}
{% macro journey_signal_columns(journey) %}
  {%- set known = phasegate.signal_names() -%}
  {%- set used = [] -%}
  {%- for p in journey.phases -%}
    {%- for tok in modules.re.findall('[A-Za-z_][A-Za-z0-9_]*', p.when) -%}
      {%- if tok in known and tok not in used %}{% do used.append(tok) %}{% endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- do return(used) -%}
{% endmacro %}
