{#- Phase transitions for one evaluation date: every customer whose phase on `as_of`
    differs from their phase before it (or who has none yet) gets one row. `state` is the
    transitions relation so far (none on a first build). Shared by the incremental model and
    the backfill operation. -#}
{% macro phase_transitions_sql(as_of, signals, state) %}
{%- set as_of_lit = phasegate.date_literal(as_of) -%}
{%- set journeys = phasegate.journeys() -%}

with current_state as (
    {%- if state is not none %}
    select customer_id, journey, phase, entered_on
    from (
        select
            t.customer_id,
            t.journey,
            t.to_phase as phase,
            t.transitioned_on as entered_on,
            row_number() over (
                partition by t.customer_id, t.journey order by t.transitioned_on desc
            ) as rn
        from {{ state }} as t
        where t.transitioned_on < {{ as_of_lit }}
    ) as latest
    where rn = 1
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as journey,
        cast(null as {{ dbt.type_string() }}) as phase,
        cast(null as date) as entered_on
    where 1 = 0
    {%- endif %}
)

{%- for journey_name, journey in journeys.items() %},

{{ journey_name }}__inputs as (
    select
        s.*,
        cs.phase as _pg_prev_phase,
        cs.entered_on as _pg_prev_entered_on
    from {{ signals }} as s
    left join current_state as cs
        on cs.customer_id = s.customer_id and cs.journey = '{{ journey_name }}'
),

{{ journey_name }}__candidates as (
    select
        customer_id,
        _pg_prev_phase as prev_phase,
        _pg_prev_entered_on as prev_entered_on,
        {{ phasegate.phase_candidate_case(journey, '_pg_prev_phase') }} as candidate_phase,
        {{ phasegate.phase_dwell_days_case(journey, '_pg_prev_phase') }} as min_dwell_days,
        {{ phasegate.json_object(phasegate.journey_signal_columns(journey)) }} as signal_values
    from {{ journey_name }}__inputs
),

{{ journey_name }}__decided as (
    select
        '{{ journey_name }}' as journey,
        customer_id,
        prev_phase,
        prev_entered_on,
        signal_values,
        case
            when prev_phase is null then candidate_phase
            when candidate_phase = prev_phase then prev_phase
            when {{ dbt.datediff('prev_entered_on', as_of_lit, 'day') }} < min_dwell_days
                then prev_phase
            else candidate_phase
        end as phase
    from {{ journey_name }}__candidates
)
{%- endfor %},

decided as (
    {%- for journey_name in journeys %}
    select * from {{ journey_name }}__decided
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select
    {{ phasegate.surrogate_key(['journey', 'customer_id', as_of_lit]) }} as transition_id,
    journey,
    customer_id,
    prev_phase as from_phase,
    phase as to_phase,
    {{ as_of_lit }} as transitioned_on,
    prev_entered_on as from_phase_entered_on,
    {{ dbt.datediff('prev_entered_on', as_of_lit, 'day') }} as days_in_from_phase,
    signal_values
from decided
where prev_phase is null or phase <> prev_phase
{% endmacro %}
