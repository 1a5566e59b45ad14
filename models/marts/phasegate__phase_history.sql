{#- Phase validity intervals, derived from transitions: [valid_from, valid_to) per
    customer and journey, contiguous and non-overlapping by construction. -#}
with transitions as (
    select * from {{ ref('phasegate__phase_transitions') }}
)

select
    transition_id as phase_interval_id,
    journey,
    customer_id,
    to_phase as phase,
    from_phase as previous_phase,
    transitioned_on as valid_from,
    lead(transitioned_on) over (
        partition by customer_id, journey order by transitioned_on
    ) as valid_to,
    case
        when lead(transitioned_on) over (
            partition by customer_id, journey order by transitioned_on
        ) is null then true
        else false
    end as is_current
from transitions
