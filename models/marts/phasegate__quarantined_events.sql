{#- Events that signals do not count, with the rule each broke. Nothing here is dropped
    silently: `phasegate check` reports these counts and they are visible in BI. -#}
{%- set as_of = phasegate.as_of_date() %}
with classified as (
    {{ phasegate.validated_events_sql(
        ref('int_events_unioned'),
        ref('int_identifiers_stitched'),
        occurred_before=none) }}
)

select
    {{ phasegate.surrogate_key(['event_id', 'occurred_at', 'received_at', 'user_id', 'anonymous_id', 'event_type', 'quarantine_reason']) }}
        as quarantined_event_id,
    event_id,
    occurred_at,
    received_at,
    user_id,
    anonymous_id,
    event_type,
    channel,
    amount,
    quarantine_reason
from classified
where quarantine_reason is not null
    and received_at < {{ phasegate.end_of_day_literal(as_of) }}
