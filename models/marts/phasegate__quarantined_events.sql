{#- Events that signals do not count, with the rule each broke. Nothing here is dropped
    silently: `phasegate check` reports these counts and they are visible in BI. -#}
select
    {{ phasegate.surrogate_key(['v.event_row_id', 'v.quarantine_reason']) }} as quarantined_event_id,
    case when v.quarantine_reason = 'missing_event_id' then null else v.event_row_id end as event_id,
    v.occurred_at,
    v.received_at,
    v.user_id,
    v.anonymous_id,
    v.event_type,
    v.channel,
    v.amount,
    v.quarantine_reason
from {{ ref('int_events_validated') }} as v
where v.quarantine_reason is not null
