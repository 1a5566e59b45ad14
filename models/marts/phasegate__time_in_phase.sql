{#- How long customers stay in each phase: completed stays, and ongoing ones so far. -#}
{%- set as_of_lit = phasegate.date_literal(phasegate.as_of_date()) %}
with stays as (
    select
        journey,
        phase,
        case when valid_to is null then 'ongoing' else 'completed' end as stay_status,
        {{ dbt.datediff('valid_from', 'coalesce(valid_to, ' ~ as_of_lit ~ ')', 'day') }} as days_in_phase
    from {{ ref('phasegate__phase_history') }}
)

select
    {{ phasegate.surrogate_key(['journey', 'phase', 'stay_status']) }} as time_in_phase_id,
    journey,
    phase,
    stay_status,
    count(*) as stays,
    avg(cast(days_in_phase as {{ dbt.type_float() }})) as avg_days,
    min(days_in_phase) as min_days,
    {{ phasegate.percentile('days_in_phase', 0.5) }} as p50_days,
    {{ phasegate.percentile('days_in_phase', 0.9) }} as p90_days,
    max(days_in_phase) as max_days
from stays
group by journey, phase, stay_status
