{{
    config(
        materialized='incremental',
        unique_key='holdout_assignment_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook="{{ phasegate.delete_departed_holdouts() }}",
        tags=['phasegate_incremental']
    )
}}
{#- Holdout group per customer and journey. Buckets (0-9999) come from a salted hash of
    the customer id (globally) and of journey + customer id (per journey), so a customer's
    group never changes across runs and dates, and raising a percentage only adds customers.
    Held-out customers keep their phases (tracked for uplift) but are never activated.

    A customer's rows depend only on its id and the settings (salt, journeys, percentages),
    so an incremental run assigns the customers it has not seen yet, and the post-hook drops
    the customers that left. Rows carry the md5 of the settings they were assigned under
    (`settings_fingerprint`, holdout_settings_fingerprint): when it changes, every customer is assigned again and the rows
    of the old settings (a journey removed) are dropped. -#}
{%- set salt = phasegate.holdout_salt() | replace("'", "''") %}
{%- set global_cut = ((phasegate.global_holdout_pct() | float) * 100) | round | int %}
{%- set settings = phasegate.holdout_settings_fingerprint() %}
{%- set assign_all = true %}
{%- if phasegate.stored_table_readable() and 'settings_fingerprint' in phasegate.relation_columns(this) %}
    {%- set stored = run_query('select min(t.settings_fingerprint), max(t.settings_fingerprint), count(*), '
        ~ settings ~ ' from ' ~ this ~ ' as t').rows[0] %}
    {#- An empty table has no fingerprint to compare; assigning everyone is then free. -#}
    {%- set assign_all = stored[2] == 0 or stored[0] != stored[1] or stored[0] != stored[3] %}
{%- endif %}
with customers as (
    select
        u.customer_id,
        {{ phasegate.hash_bucket(dbt.concat(["'" ~ salt ~ "|global|'", 'u.customer_id'])) }} as global_bucket
    from {{ ref('int_customers_unioned') }} as u
    {% if not assign_all -%}
    {#- An anti-join on the stored ids, not `not exists`, for the reason given in
        phasegate__unvalidated_events. -#}
    left join (select distinct t.customer_id from {{ this }} as t) as s on s.customer_id = u.customer_id
    where s.customer_id is null
    {%- endif %}
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
    end as holdout_group,
    cast({{ settings }} as {{ dbt.type_string() }}) as settings_fingerprint
from (
    select
        customer_id,
        global_bucket,
        {{ phasegate.hash_bucket(dbt.concat(["'" ~ salt ~ "|" ~ jname ~ "|'", 'customer_id'])) }} as journey_bucket
    from customers
) as c
{%- endfor %}
