{#- Events deduplicated by event_id (the earliest received copy wins), resolved to a
    customer, and classified: `quarantine_reason` is null for a usable event, otherwise the
    first rule it breaks. Bounds on occurred_at are applied before deduplication (copies of
    one event share occurred_at, so a bounded window never splits a duplicate pair). -#}
{% macro validated_events_sql(events, identity_map, occurred_from=none, occurred_before=none) %}
{%- set known_types = phasegate.event_types() -%}
with bounded as (
    select e.*
    from {{ events }} as e
    where 1 = 1
    {%- if occurred_from is not none %}
        and e.occurred_at >= {{ occurred_from }}
    {%- endif %}
    {%- if occurred_before is not none %}
        and e.occurred_at < {{ occurred_before }}
    {%- endif %}
),

numbered as (
    select
        b.*,
        case
            when b.event_id is null then 1
            else row_number() over (
                partition by b.event_id order by b.received_at, b.occurred_at, b.event_type
            )
        end as _pg_copy
    from bounded as b
),

resolved as (
    select
        n.event_id,
        n.occurred_at,
        n.received_at,
        n.user_id,
        n.anonymous_id,
        n.event_type,
        n.channel,
        n.amount,
        n.properties,
        coalesce(n.user_id, m.customer_id) as customer_id
    from numbered as n
    left join {{ identity_map }} as m
        on m.identifier_type = 'anonymous_id' and m.identifier_value = n.anonymous_id and m.within_limit
    where n._pg_copy = 1
)

select
    r.*,
    case
        when r.event_id is null then 'missing_event_id'
        when r.occurred_at is null then 'missing_occurred_at'
        when r.user_id is null and r.anonymous_id is null then 'missing_identifiers'
        when r.occurred_at > {{ dbt.dateadd('minute', phasegate.clock_skew_minutes(), 'r.received_at') }}
            then 'occurred_after_received'
        when r.event_type is null or r.event_type not in ({{ phasegate.quoted_list(known_types) }})
            then 'unknown_event_type'
        when r.event_type = '{{ phasegate.order_event_type() }}' and (r.amount is null or r.amount < 0)
            then 'invalid_order_amount'
        when r.customer_id is null then 'unresolved_identity'
    end as quarantine_reason
from resolved as r
{% endmacro %}
