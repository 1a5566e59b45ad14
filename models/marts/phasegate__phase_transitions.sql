{{
    config(
        materialized='incremental',
        unique_key='transition_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        tags=['phasegate_incremental'],
        pre_hook="{% if is_incremental() %}delete from {{ this }} where transitioned_on >= {{ phasegate.date_literal(phasegate.as_of_date()) }}{% endif %}"
    )
}}
{#- One row per phase change. Each run evaluates the as-of date against the state before it;
    the pre-hook first removes that date and any later ones, so re-running a date (or a
    backfill from an earlier date) rebuilds the same history instead of stacking it. -#}
{{ phasegate.phase_transitions_sql(
    phasegate.as_of_date(),
    ref('phasegate__customer_signals'),
    this if is_incremental() else none) }}
