{#- Customers who must never be activated, one row each: on the suppression list, or with a
    deletion request (which also deletes them at every destination that supports it). -#}
select
    customer_id,
    max(case when action = 'delete' then 1 else 0 end) = 1 as is_deletion_requested,
    min(requested_at) as first_requested_at,
    max(requested_at) as last_requested_at,
    count(*) as suppression_entries,
    max(reason) as latest_reason
from {{ ref('int_suppressions_resolved') }}
where customer_id is not null
group by customer_id
