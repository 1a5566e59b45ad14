{{
    config(
        materialized='incremental',
        unique_key='event_row_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        pre_hook="{{ phasegate.widen_batch_column('validated_batch') }}",
        tags=['phasegate_incremental']
    )
}}
{#- Every event received by the end of the as-of day, validated once: deduplicated by
    event_id (the earliest received copy wins), resolved to a customer, and classified
    (`quarantine_reason` null for a usable event). Daily activity, quarantined events and late
    events all read this table, so no model re-validates the whole event history.

    Incremental runs are driven by a watermark, the latest received_at already stored: they
    re-read events received from `phasegate__lookback_days` before it (rows a loader lands
    late, with an older received_at) up to the end of the as-of day. A copy of a stored event
    that arrives later ranks after it, as in a full build. Stored anonymous events whose
    identity now resolves differently (a later identify, a merge) are re-resolved in every
    run, so the table always equals a full rebuild. Each run stamps the rows it writes with a
    batch number above the table's and at least the run's start in epoch milliseconds
    (batch_number_floor: numbers keep growing across a rebuild), which daily activity uses as
    its own watermark;
    `previous_customer_id` / `previous_activity_date` keep what a rewritten row counted
    towards before, so that day is recomputed too. -#}
{%- set eod = phasegate.end_of_day_literal(phasegate.as_of_date()) -%}
{%- set raw_columns = ['event_id', 'occurred_at', 'received_at', 'user_id', 'anonymous_id',
    'event_type', 'channel', 'amount', 'properties', 'event_source'] -%}
{%- set qualified_raw = [] -%}
{%- for c in raw_columns %}{% do qualified_raw.append('e.' ~ c) %}{% endfor -%}
{#- What validation and the models downstream read. The table holds every event, so each
    column costs: properties (free JSON text) and event_source are read from the source by
    whoever needs them, and event_id is event_row_id for every row that has one. -#}
{%- set kept_columns = ['event_id', 'occurred_at', 'received_at', 'user_id', 'anonymous_id',
    'event_type', 'channel', 'amount'] -%}
{%- set stored_columns = kept_columns[1:] -%}
{%- set qualified_prior = [] -%}
{%- for c in ['event_row_id', 'customer_id', 'quarantine_reason'] + stored_columns %}{% do qualified_prior.append('t.' ~ c) %}{% endfor -%}

{#- Each run records the version of the identifier map it resolved against
    (`resolved_map_batch`, `resolved_map_rows`: identity_map_state.sql's stitched_version).
    Stored anonymous events are re-resolved only when the map changed since the last run:
    finding them reads every stored anonymous event and joins the map, and on some days nothing
    changed. The version is compared with that of the rows the last run wrote (versions do not
    grow as batches do): a run that re-resolved against the map, or found it unchanged, leaves
    every row consistent with it. Every row a run writes carries the same version, so one row
    is read (`limit 1`): after a full build, the last run's rows are every row, and reading all
    their versions took 4.7 s cold at 1M customers, and 11-13 s beside the guard report. -#}
{%- set map_version = '(' ~ phasegate.stitched_version(ref('int_identifiers_stitched')) ~ ')' -%}
{%- set version = {'resolved_map_batch': '(select v.map_batch from ' ~ map_version ~ ' as v)',
    'resolved_map_rows': '(select v.map_rows from ' ~ map_version ~ ' as v)'} -%}
{%- set map_unchanged = false -%}
{%- if execute and is_incremental() -%}
    {%- set last_row -%}
        from {{ this }} as t
        where t.validated_batch = (select max(b.validated_batch) from {{ this }} as b)
        limit 1
    {%- endset -%}
    {%- set row = run_query('select v.map_batch, v.map_rows'
        ~ (', (select t.resolved_map_batch ' ~ last_row ~ '), (select t.resolved_map_rows ' ~ last_row ~ ')'
           if phasegate.has_columns(this, version.keys()) else ', null, null')
        ~ ' from ' ~ map_version ~ ' as v').rows[0] -%}
    {%- if row[0] is not none -%}
        {%- set map_unchanged = row[0] == row[2] and row[1] == row[3] -%}
        {#- Known now: written as literals instead of reading the map again. -#}
        {%- do version.update({'resolved_map_batch': row[0] | int | string,
            'resolved_map_rows': row[1] | int | string}) -%}
    {%- endif -%}
{%- endif %}

with
{%- if is_incremental() %}
watermark as (
    select
        coalesce(
            {{ dbt.dateadd('day', -1 * phasegate.lookback_days(), 'max(t.received_at)') }},
            {{ phasegate.timestamp_floor() }}
        ) as received_from,
        cast(
            greatest(coalesce(max(t.validated_batch), 0) + 1, {{ phasegate.batch_number_floor() }})
            as {{ dbt.type_bigint() }}
        ) as batch
    from {{ this }} as t
),
{%- endif %}

{#- The events received in this run's window, as a subquery `e` written out where it is read
    rather than a CTE: DuckDB materialises a CTE read more than once, and copying all 78 M
    rows of a 1M-customer full build into one and reading it back three times cost ~75 of
    the model's 227 CPU-s. Two plain range conditions, no `or`: DuckDB then pushes the
    watermark into the scan and reads only the window's rows (an `or ... is null` made it read
    every column of every event, ~15 s of CPU a day). A row without received_at cannot be
    placed against the watermark, so every run re-reads it (it is quarantined, and cheap: the
    key is its content). #}
{%- set arrived -%}
(
    select e.*
    from {{ ref('int_events_unioned') }} as e
    {%- if is_incremental() %}
    cross join watermark as w
    {%- endif %}
    where e.received_at < {{ eod }}
    {%- if is_incremental() %}
        and e.received_at >= w.received_from
    {%- endif %}
    union all
    select e.*
    from {{ ref('int_events_unioned') }} as e
    where e.received_at is null
) as e
{%- endset %}
{%- set id_hash = phasegate.grouping_hash('e.event_id') %}

{#- Only event ids that arrive more than once need ranking. Ranking every event's copies
    cost a third of a 1M-customer full build; finding the repeated ids first and ranking only
    their copies took 135 s where the window over all took 185 s. They are found by a
    fixed-width hash (grouping_hash), read alone (repeated_values: on DuckDB a sort, 5 CPU-s
    at 1M customers where grouping the hashes took 18.5): an id whose hash repeats only by
    collision is ranked with its real id below, and is first. #}
repeated_ids as (
    {{ phasegate.repeated_values(id_hash, arrived, 'e.event_id is not null') | indent(4) }}
),

{#- Events without a user_id come first, here and in every run's output (re_resolved first in
    `candidates`): DuckDB keeps the order in which a query yields rows, so they fill their own
    row groups, and the daily pass over stored anonymous events (re_resolved below) skips the
    others by their statistics. At 1M customers, 42 of 630 row groups hold them; read cold,
    that pass took 6.7 CPU-s instead of 17. Reading the arrived events once per branch cost
    the full build nothing measurable (67.6 s against 67.3 s). Other warehouses store rows
    as they please; the order changes no result. #}
fresh as (
    {%- for identified in ['is null', 'is not null'] %}
    select
        {% for c in kept_columns %}e.{{ c }},
        {% endfor -%}
        e.event_id as event_row_id
    from {{ arrived }}
    left join repeated_ids as r on r.repeated_value = {{ id_hash }}
    where e.event_id is not null
        and r.repeated_value is null
        and e.user_id {{ identified }}
    union all
    {%- endfor %}
    {#- The earliest received copy of an id that arrived more than once. #}
    select
        {% for c in kept_columns %}n.{{ c }},
        {% endfor -%}
        n.event_id as event_row_id
    from (
        select
            {% for c in kept_columns %}e.{{ c }},
            {% endfor -%}
            row_number() over (
                partition by e.event_id
                order by e.received_at, e.occurred_at, e.event_type
            ) as copy_rank
        from {{ arrived }}
        inner join repeated_ids as r on r.repeated_value = {{ id_hash }}
        where e.event_id is not null
    ) as n
    where n.copy_rank = 1
    union all
    {#- Copies without an event_id are all kept (each is quarantined), keyed by a hash of their
        content; identical ones are told apart by their rank. Only these rows are hashed:
        hashing every row would cost more than the rest of the validation. #}
    select
        {% for c in kept_columns %}h.{{ c }},
        {% endfor -%}
        {{ dbt.concat(['h.row_hash', "'#'", 'cast(h.copy_rank as ' ~ dbt.type_string() ~ ')']) }} as event_row_id
    from (
        select
            k.*,
            row_number() over (
                partition by k.row_hash
                order by k.received_at, k.occurred_at, k.event_type
            ) as copy_rank
        from (
            select
                {% for c in kept_columns %}e.{{ c }},
                {% endfor -%}
                {{ phasegate.surrogate_key(qualified_raw) }} as row_hash
            from {{ arrived }}
            where e.event_id is null
        ) as k
    ) as h
),

{%- if is_incremental() %}

{#- Stored rows a fresh row can replace: those inside the window (and those without
    received_at, re-read every run). Only these are read with all their columns. #}
stored_in_window as (
    select {{ qualified_prior | join(', ') }}
    from {{ this }} as t
    cross join watermark as w
    where t.received_at >= w.received_from
    union all
    select {{ qualified_prior | join(', ') }}
    from {{ this }} as t
    where t.received_at is null
),

{#- Fresh keys stored before the window, with when they were: a fresh copy of a row stored
    before the window lost to it and is dropped. Only fresh keys not stored inside the window
    are looked up (on a 1M-customer day, the 145 k new ones of the 1.77 M re-read): with all
    of them, the hash table and its 1.6 M matches made this lookup 4.5 of the model's 5.4
    CPU-s. An inner join on the key alone, so DuckDB builds its hash table on those keys and
    streams the stored ones past it; with the window condition inside (or a left join from the
    fresh rows) it built the table on all 77 M stored keys (25 s of an incremental day). Only
    key and time are read: the matches are spread over every row group, and reading every
    column of them cost 65 s as a bare join. #}
stored_keys as (
    select t.event_row_id, t.received_at
    from {{ this }} as t
    inner join (
        select f.event_row_id
        from fresh as f
        left join (
            select s.event_row_id
            from {{ this }} as s
            cross join watermark as w
            where s.received_at >= w.received_from
        ) as s on s.event_row_id = f.event_row_id
        where s.event_row_id is null
    ) as n on n.event_row_id = t.event_row_id
),

{#- What each fresh row replaces, if anything. A copy received before the window lost to the
    stored one, which stays as it is. #}
fresh_against_stored as (
    select
        f.*,
        t.event_row_id as prior_row_id,
        t.customer_id as prior_customer_id,
        t.quarantine_reason as prior_quarantine_reason
        {%- for c in stored_columns %},
        t.{{ c }} as prior_{{ c }}
        {%- endfor %}
    from fresh as f
    cross join watermark as w
    left join stored_in_window as t on t.event_row_id = f.event_row_id
    left join stored_keys as b on b.event_row_id = f.event_row_id
    where f.event_id is null
        or b.event_row_id is null
        or b.received_at is null
        or b.received_at >= w.received_from
),

{%- if not map_unchanged %}

{#- The anonymous ids whose stored events now resolve to another customer (or to none), with
    the customer they resolve to. Stored anonymous events fill their own row groups (see
    `fresh`), so the scans here and below read only those. Each id's customers are compared
    once, not each event's: joining all 4.9 M stored anonymous events of a 1M-customer day to
    the map and reading every column of each took 1.5-4.6 CPU-s more (BENCHMARKS.md). #}
moved_anonymous_ids as (
    select distinct s.anonymous_id, m.customer_id
    from (
        select distinct t.anonymous_id, t.customer_id
        from {{ this }} as t
        cross join watermark as w
        where t.user_id is null
            and t.anonymous_id is not null
            and t.received_at < w.received_from
    ) as s
    left join {{ ref('int_identifiers_stitched') }} as m
        on m.identifier_type = 'anonymous_id' and m.identifier_value = s.anonymous_id and m.within_limit
    where coalesce(m.customer_id, '') <> coalesce(s.customer_id, '')
),

{#- Their stored events that resolve differently, read back by anonymous id: finding them by
    event key instead read all 77 M stored keys a second time (cold at 1M customers: 16.2 s
    for the whole select, against 10.5 s). #}
re_resolved as (
    select
        case when t.quarantine_reason = 'missing_event_id' then null else t.event_row_id end as event_id,
        {% for c in stored_columns %}t.{{ c }},
        {% endfor -%}
        t.event_row_id,
        t.event_row_id as prior_row_id,
        t.customer_id as prior_customer_id,
        t.quarantine_reason as prior_quarantine_reason
        {%- for c in stored_columns %},
        t.{{ c }} as prior_{{ c }}
        {%- endfor %}
    from {{ this }} as t
    cross join watermark as w
    inner join moved_anonymous_ids as x on x.anonymous_id = t.anonymous_id
    where t.user_id is null
        and t.anonymous_id is not null
        and t.received_at < w.received_from
        and coalesce(x.customer_id, '') <> coalesce(t.customer_id, '')
),
{%- endif %}

candidates as (
    {%- if not map_unchanged %}
    select * from re_resolved
    union all
    {%- endif %}
    select * from fresh_against_stored
),
{%- else %}

candidates as (
    select
        f.*,
        cast(null as {{ dbt.type_string() }}) as prior_customer_id,
        cast(null as {{ dbt.type_timestamp() }}) as prior_occurred_at
    from fresh as f
),
{%- endif %}

{#- Only events without a user_id look their anonymous_id up: with the key null for the others,
    the join skips them (a 1M-customer full build probes the map with 5.1 M anonymous events
    instead of the 36 M that carry an anonymous_id: 1.8 CPU-s instead of 6.1-6.4). #}
resolved as (
    select
        c.*,
        coalesce(c.user_id, m.customer_id) as customer_id
    from candidates as c
    left join {{ ref('int_identifiers_stitched') }} as m
        on m.identifier_type = 'anonymous_id'
        and m.identifier_value = case when c.user_id is null then c.anonymous_id end
        and m.within_limit
),

classified as (
    select
        r.*,
        case
            when r.event_id is null then 'missing_event_id'
            when r.occurred_at is null then 'missing_occurred_at'
            when r.received_at is null then 'missing_received_at'
            when r.user_id is null and r.anonymous_id is null then 'missing_identifiers'
            when r.occurred_at > {{ dbt.dateadd('minute', phasegate.clock_skew_minutes(), 'r.received_at') }}
                then 'occurred_after_received'
            when r.event_type is null or r.event_type not in ({{ phasegate.quoted_list(phasegate.event_types()) }})
                then 'unknown_event_type'
            when r.event_type = '{{ phasegate.order_event_type() }}' and (r.amount is null or r.amount < 0)
                then 'invalid_order_amount'
            when r.customer_id is null then 'unresolved_identity'
        end as quarantine_reason
    from resolved as r
)

select
    c.event_row_id,
    {% for col in stored_columns %}c.{{ col }},
    {% endfor -%}
    c.customer_id,
    c.quarantine_reason,
    c.prior_customer_id as previous_customer_id,
    cast(c.prior_occurred_at as date) as previous_activity_date,
    {%- for column, value in version.items() %}
    cast({{ value }} as {{ dbt.type_bigint() }}) as {{ column }},
    {%- endfor %}
    {%- if is_incremental() %}
    w.batch as validated_batch
    {%- else %}
    cast({{ phasegate.batch_number_floor() }} as {{ dbt.type_bigint() }}) as validated_batch
    {%- endif %}
from classified as c
{%- if is_incremental() %}
cross join watermark as w
{#- A row read again inside the lookback that equals its stored version is not rewritten:
    a new batch number would make daily activity and the signal summary recompute every
    customer active in the last few days. #}
where c.prior_row_id is null
    or not (
        c.customer_id is not distinct from c.prior_customer_id
        and c.quarantine_reason is not distinct from c.prior_quarantine_reason
        {%- for col in stored_columns %}
        and c.{{ col }} is not distinct from c.prior_{{ col }}
        {%- endfor %}
    )
{#- A run's rows are few, so sorting them is cheap and keeps events without a user_id in
    row groups of their own whatever order the joins above yield (see `fresh`). #}
order by case when c.user_id is null then 0 else 1 end
{%- endif %}
