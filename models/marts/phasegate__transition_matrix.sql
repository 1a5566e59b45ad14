{#- For each window of N days ending on the as-of date: of the customers in a phase at the
    window's start, how many are in each phase at its end (staying included), and the
    probability. Customers first placed inside the window start from '(new)'. -#}
{%- set as_of = phasegate.as_of_date() %}
with history as (
    select * from {{ ref('phasegate__phase_history') }}
),

{%- for w in phasegate.transition_windows() %}
{%- set start = phasegate.date_literal(phasegate.days_before(as_of, w)) %}
{%- set stop = phasegate.date_literal(as_of) %}

w{{ w }} as (
    select
        {{ w }} as window_days,
        {{ start }} as window_start,
        coalesce(s.phase, '(new)') as from_phase,
        e.phase as to_phase,
        e.journey
    from history as e
    left join history as s
        on s.customer_id = e.customer_id and s.journey = e.journey
        and s.valid_from <= {{ start }} and (s.valid_to is null or s.valid_to > {{ start }})
    where e.valid_from <= {{ stop }} and (e.valid_to is null or e.valid_to > {{ stop }})
),
{%- endfor %}

moves as (
    {%- for w in phasegate.transition_windows() %}
    select * from w{{ w }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

counted as (
    select window_days, window_start, journey, from_phase, to_phase, count(*) as customers
    from moves
    group by window_days, window_start, journey, from_phase, to_phase
)

select
    {{ phasegate.surrogate_key(['window_days', 'journey', 'from_phase', 'to_phase']) }} as transition_cell_id,
    window_days,
    window_start,
    {{ phasegate.date_literal(as_of) }} as window_end,
    journey,
    from_phase,
    to_phase,
    customers,
    cast(customers as {{ dbt.type_float() }})
        / sum(customers) over (partition by window_days, journey, from_phase) as probability
from counted
