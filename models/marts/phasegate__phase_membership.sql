{#- The phase each customer is in now, per journey. -#}
{%- set as_of_lit = phasegate.date_literal(phasegate.as_of_date()) %}
with current_intervals as (
    select * from {{ ref('phasegate__phase_history') }}
    where is_current
)

select
    {{ phasegate.surrogate_key(['journey', 'customer_id']) }} as membership_id,
    journey,
    customer_id,
    phase,
    valid_from as entered_on,
    previous_phase,
    {{ dbt.datediff('valid_from', as_of_lit, 'day') }} as days_in_phase,
    {{ as_of_lit }} as as_of_date
from current_intervals
