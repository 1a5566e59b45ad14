{#- The configured journeys as a table: every phase with its rule, so BI and the
    pre-activation checks read the same phase set the models evaluate. -#}
{%- set rows = [] -%}
{%- for jname, j in phasegate.journeys().items() -%}
    {%- set jmeta = {'priority': j.get('priority', phasegate.default_journey_priority()),
        'holdout_pct': j.get('holdout_pct', 0)} -%}
    {%- do rows.append({'journey': jname, 'phase': j.default_phase, 'position': 0,
        'is_default': true, 'when_sql': none, 'from_phases': none,
        'min_dwell_days': j.get('min_dwell_days', 0), 'meta': jmeta}) -%}
    {%- for p in j.phases -%}
        {%- set src = p.get('from') -%}
        {%- do rows.append({'journey': jname, 'phase': p.name, 'position': loop.index,
            'is_default': false, 'when_sql': p.when,
            'from_phases': ([src] if src is string else src) | join(',') if src else none,
            'min_dwell_days': p.get('min_dwell_days', j.get('min_dwell_days', 0)), 'meta': jmeta}) -%}
    {%- endfor -%}
{%- endfor -%}

{%- for r in rows %}
select
    {{ phasegate.surrogate_key(["'" ~ r.journey ~ "'", "'" ~ r.phase ~ "'"]) }} as journey_phase_id,
    cast('{{ r.journey }}' as {{ dbt.type_string() }}) as journey,
    cast('{{ r.phase }}' as {{ dbt.type_string() }}) as phase,
    {{ r.position }} as phase_position,
    {{ 'true' if r.is_default else 'false' }} as is_default,
    cast({{ "'" ~ (r.when_sql | replace("'", "''")) ~ "'" if r.when_sql else 'null' }} as {{ dbt.type_string() }}) as when_sql,
    cast({{ "'" ~ r.from_phases ~ "'" if r.from_phases else 'null' }} as {{ dbt.type_string() }}) as from_phases,
    {{ r.min_dwell_days | int }} as min_dwell_days,
    {{ r.meta.priority | int }} as journey_priority,
    cast({{ r.meta.holdout_pct | float }} as {{ dbt.type_numeric() }}) as journey_holdout_pct
{%- if not loop.last %}
union all
{%- endif %}
{%- endfor %}
