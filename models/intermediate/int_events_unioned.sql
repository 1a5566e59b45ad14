{#- Behavioural events from every enabled source in one shape. Segment/RudderStack track
    names are mapped with phasegate__segment_event_map; pages are page views on the web,
    screens app opens in the app; order amounts come from the per-event order table. -#}
{%- set parts = [] %}
{%- if phasegate.using_generic_source() %}
{%- set generic %}
select event_id, occurred_at, received_at, user_id, anonymous_id, event_type, channel, amount,
       properties, 'phasegate' as event_source
from {{ ref('stg_phasegate__events') }}
{%- endset %}
{%- do parts.append(generic) %}
{%- endif %}
{%- if phasegate.using_segment() %}
{%- set mapped_type -%}
case tr.event_name
    {%- for name, event_type in phasegate.segment_event_map().items() %}
    when '{{ name | replace("'", "''") }}' then '{{ event_type }}'
    {%- endfor %}
    else lower(replace(trim(tr.event_name), ' ', '_'))
end
{%- endset %}
{%- set segment %}
select t.event_id, t.occurred_at, t.received_at, t.user_id, t.anonymous_id, t.event_type,
       case
           when t.event_type like 'email%' then 'email'
           when t.event_type like 'sms%' then 'sms'
           when t.event_type like 'push%' then 'push'
           when lower(coalesce(t.context_library_name, '')) like '%ios%'
             or lower(coalesce(t.context_library_name, '')) like '%android%' then 'app'
           else 'web'
       end as channel,
       o.amount, cast(null as {{ dbt.type_string() }}) as properties, 'segment_tracks' as event_source
from (select tr.*, {{ mapped_type }} as event_type
      from {{ ref('stg_segment__tracks') }} as tr) as t
left join {{ ref('stg_segment__orders') }} as o on o.event_id = t.event_id
union all
select event_id, occurred_at, received_at, user_id, anonymous_id, 'page_view' as event_type, 'web' as channel,
       cast(null as {{ dbt.type_numeric() }}) as amount, cast(null as {{ dbt.type_string() }}) as properties,
       'segment_pages' as event_source
from {{ ref('stg_segment__pages') }}
union all
select event_id, occurred_at, received_at, user_id, anonymous_id, 'app_open', 'app',
       cast(null as {{ dbt.type_numeric() }}), cast(null as {{ dbt.type_string() }}), 'segment_screens'
from {{ ref('stg_segment__screens') }}
{%- endset %}
{%- do parts.append(segment) %}
{%- endif %}
{{ parts | join('\nunion all\n') }}
