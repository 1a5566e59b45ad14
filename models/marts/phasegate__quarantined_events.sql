{{
    config(
        materialized='incremental',
        unique_key='event_row_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook="delete from {{ this }} where quarantine_reason is null",
        pre_hook="{{ phasegate.widen_batch_column('validated_batch') }}",
        tags=['phasegate_incremental']
    )
}}
{#- Events that signals do not count, with the rule each broke. Nothing here is dropped
    silently: `phasegate check` reports these counts and they are visible in BI.

    Incremental on int_events_validated's batches, like daily activity: a run reads only the
    rows validated since the highest batch stored here (a full scan for the few quarantined
    rows among 77 M events took 20 s at 1M customers; the day's batch is read from its own
    row groups). A stored event that is no longer quarantined (its identity resolved) is
    written back with a null reason, replacing the stored row, and the post-hook removes it.
    If the events table was rebuilt (every batch left in it is above the ones read here),
    every row is re-read and stored rows it no longer quarantines are removed the same way. -#}
{%- set validated = ref('int_events_validated') %}
{%- if is_incremental() and execute %}
{%- set stored = phasegate.relation_columns(this) %}
{%- if 'validated_batch' not in stored %}
{{ exceptions.raise_compiler_error(
    this ~ " was built by an older phasegate, without the validated_batch column its incremental"
    ~ " runs read. Rebuild it once: dbt build --full-refresh --select phasegate__quarantined_events"
    ~ " (or phasegate build --full-refresh).") }}
{%- endif %}
{%- endif %}
with
{%- if is_incremental() %}
{{ phasegate.validated_batch_bounds_ctes(this, validated, 'validated_batch') }},

changed as (
    select v.*
    from {{ validated }} as v
    cross join read_from as f
    where v.validated_batch > f.after_batch
),

quarantined as (
    select c.* from changed as c where c.quarantine_reason is not null
),

{#- Stored rows to remove: events the new batches validate as usable, and after a rebuild of
    the events table every stored event it does not quarantine. #}
released_ids as (
    select t.event_row_id
    from {{ this }} as t
    inner join changed as c on c.event_row_id = t.event_row_id
    where c.quarantine_reason is null
    union
    select t.event_row_id
    from {{ this }} as t
    cross join read_from as f
    left join quarantined as q on q.event_row_id = t.event_row_id
    where f.after_batch = 0
      and q.event_row_id is null
),

{#- Written back (from the stored row, so every type matches) with a null reason: the
    delete+insert replaces the stored row, and the post-hook deletes it. #}
rows_to_write as (
    select
        q.event_row_id, q.occurred_at, q.received_at, q.user_id, q.anonymous_id, q.event_type,
        q.channel, q.amount, q.quarantine_reason, q.validated_batch
    from quarantined as q
    union all
    select
        t.event_row_id, t.occurred_at, t.received_at, t.user_id, t.anonymous_id, t.event_type,
        t.channel, t.amount, cast(null as {{ dbt.type_string() }}), t.validated_batch
    from {{ this }} as t
    inner join released_ids as r on r.event_row_id = t.event_row_id
)
{%- else %}
rows_to_write as (
    select
        v.event_row_id, v.occurred_at, v.received_at, v.user_id, v.anonymous_id, v.event_type,
        v.channel, v.amount, v.quarantine_reason, v.validated_batch
    from {{ validated }} as v
    where v.quarantine_reason is not null
)
{%- endif %}

select
    {{ phasegate.surrogate_key(['w.event_row_id', 'w.quarantine_reason']) }} as quarantined_event_id,
    case when w.quarantine_reason = 'missing_event_id' then null else w.event_row_id end as event_id,
    w.occurred_at,
    w.received_at,
    w.user_id,
    w.anonymous_id,
    w.event_type,
    w.channel,
    w.amount,
    w.quarantine_reason,
    w.event_row_id,
    w.validated_batch
from rows_to_write as w
