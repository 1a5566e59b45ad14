{#- Each suppression entry with every customer it applies to: the customer named by id, the
    customer the identity map assigns the identifier to, and any customer directly linked
    to it (guards ignored: suppressing too many is safe, too few is not). Entries that match
    no customer yet stay here with a null customer_id and apply once the identifier appears.
    Phones must be international (+ or 00 prefix): a suppression carries no country. -#}
{%- if phasegate.using_suppressions() %}
with entries as (
    select
        s.*,
        case when s.identifier_type in ('customer_id', 'user_id') then 'user_id' else s.identifier_type end
            as lookup_type
    from {{ ref('stg_phasegate_governance__suppressions') }} as s
),

normalized as (
    select
        e.*,
        {{ phasegate.normalize_identifier('e.lookup_type', 'e.identifier_value', 'null', 'null') }} as lookup_value
    from entries as e
),

matches as (
    select n.identifier_type, n.identifier_value, c.customer_id
    from normalized as n
    inner join {{ ref('int_customers_unioned') }} as c on c.customer_id = n.lookup_value
    where n.lookup_type = 'user_id'
    union
    select n.identifier_type, n.identifier_value, m.customer_id
    from normalized as n
    inner join {{ ref('int_identifiers_stitched') }} as m
        on m.identifier_type = n.lookup_type and m.identifier_value = n.lookup_value
    where n.lookup_type <> 'user_id'
        and m.customer_id is not null
    union
    select n.identifier_type, n.identifier_value, l.value_a
    from normalized as n
    inner join {{ ref('int_identity_edges_normalized') }} as l
        on l.type_a = 'user_id' and l.type_b = n.lookup_type and l.value_b = n.lookup_value
    where n.lookup_type <> 'user_id' and l.value_a is not null
        and {{ phasegate.link_is_current('l') }}
    union
    select n.identifier_type, n.identifier_value, l.value_b
    from normalized as n
    inner join {{ ref('int_identity_edges_normalized') }} as l
        on l.type_b = 'user_id' and l.type_a = n.lookup_type and l.value_a = n.lookup_value
    where n.lookup_type <> 'user_id' and l.value_b is not null
        and {{ phasegate.link_is_current('l') }}
)

select
    n.identifier_type,
    n.identifier_value,
    n.lookup_value as normalized_value,
    n.action,
    n.reason,
    n.requested_at,
    m.customer_id
from normalized as n
left join matches as m
    on m.identifier_type = n.identifier_type and m.identifier_value = n.identifier_value
{%- else %}
select
    cast(null as {{ dbt.type_string() }}) as identifier_type,
    cast(null as {{ dbt.type_string() }}) as identifier_value,
    cast(null as {{ dbt.type_string() }}) as normalized_value,
    cast(null as {{ dbt.type_string() }}) as action,
    cast(null as {{ dbt.type_string() }}) as reason,
    cast(null as {{ dbt.type_timestamp() }}) as requested_at,
    cast(null as {{ dbt.type_string() }}) as customer_id
where 1 = 0
{%- endif %}
