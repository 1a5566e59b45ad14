{#- Customers in each phase on each day, from the first evaluation to the as-of date:
    +1 when an interval opens, -1 when it closes, summed over days. -#}
{%- set as_of = phasegate.as_of_date() %}
with history as (
    select * from {{ ref('phasegate__phase_history') }}
),

deltas as (
    select journey, phase, valid_from as day, 1 as delta from history
    union all
    select journey, phase, valid_to as day, -1 as delta from history where valid_to is not null
),

net as (
    select journey, phase, day, sum(delta) as net_change
    from deltas
    group by journey, phase, day
),

bounds as (
    select min(valid_from) as first_day from history
),

days as (
    select cast(date_day as date) as day
    from (
        {{ dbt.date_spine('day', "cast('2000-01-01' as date)",
            phasegate.date_literal(as_of + modules.datetime.timedelta(days=1))) }}
    ) as spine
    where cast(date_day as date) >= (select first_day from bounds)
),

phases as (
    select distinct journey, phase from {{ ref('phasegate__journey_phases') }}
),

grid as (
    select d.day, p.journey, p.phase
    from days as d
    cross join phases as p
)

select
    {{ phasegate.surrogate_key(['g.journey', 'g.phase', 'g.day']) }} as phase_day_id,
    g.day,
    g.journey,
    g.phase,
    cast(sum(coalesce(n.net_change, 0)) over (
        partition by g.journey, g.phase order by g.day rows between unbounded preceding and current row
    ) as {{ dbt.type_int() }}) as customers
from grid as g
left join net as n
    on n.journey = g.journey and n.phase = g.phase and n.day = g.day
