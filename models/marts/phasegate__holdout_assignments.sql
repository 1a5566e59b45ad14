{#- Holdout group per customer and journey. Buckets (0-9999) come from a salted hash of
    the customer id (globally) and of journey + customer id (per journey), so a customer's
    group never changes across runs and dates, and raising a percentage only adds customers.
    Held-out customers keep their phases (tracked for uplift) but are never activated. -#}
{%- set salt = phasegate.holdout_salt() | replace("'", "''") %}
{%- set global_cut = ((phasegate.global_holdout_pct() | float) * 100) | round | int %}
with customers as (
    select
        customer_id,
        {{ phasegate.hash_bucket(dbt.concat(["'" ~ salt ~ "|global|'", 'customer_id'])) }} as global_bucket
    from {{ ref('int_customers_unioned') }}
)

{%- for jname, j in phasegate.journeys().items() %}
{%- set cut = ((j.get('holdout_pct', 0) | float) * 100) | round | int %}
{{ 'union all' if not loop.first }}
select
    {{ phasegate.surrogate_key(["'" ~ jname ~ "'", 'c.customer_id']) }} as holdout_assignment_id,
    cast('{{ jname }}' as {{ dbt.type_string() }}) as journey,
    c.customer_id,
    c.global_bucket,
    c.journey_bucket,
    c.global_bucket < {{ global_cut }} as is_global_holdout,
    c.journey_bucket < {{ cut }} as is_journey_holdout,
    c.global_bucket < {{ global_cut }} or c.journey_bucket < {{ cut }} as is_held_out,
    case
        when c.global_bucket < {{ global_cut }} then 'global_holdout'
        when c.journey_bucket < {{ cut }} then 'journey_holdout'
        else 'treatment'
    end as holdout_group
from (
    select
        customer_id,
        global_bucket,
        {{ phasegate.hash_bucket(dbt.concat(["'" ~ salt ~ "|" ~ jname ~ "|'", 'customer_id'])) }} as journey_bucket
    from customers
) as c
{%- endfor %}
