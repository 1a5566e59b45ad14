{#- Identifier -> customer map. Each anonymous id belongs to the user it was most recently
    seen logging in as; the user_id is the customer id. -#}
with links as (
    select
        case when identity_type_a = 'anonymous_id' then identity_value_a else identity_value_b end
            as anonymous_id,
        case when identity_type_a = 'user_id' then identity_value_a else identity_value_b end
            as user_id,
        observed_at
    from {{ ref('stg_phasegate__identities') }}
    where (identity_type_a = 'anonymous_id' and identity_type_b = 'user_id')
       or (identity_type_a = 'user_id' and identity_type_b = 'anonymous_id')
),

ranked as (
    select
        anonymous_id,
        user_id,
        row_number() over (partition by anonymous_id order by observed_at desc, user_id) as rn
    from links
    where anonymous_id is not null and user_id is not null
)

select
    'anonymous_id' as identifier_type,
    anonymous_id as identifier_value,
    user_id as customer_id
from ranked
where rn = 1

union all

select
    'user_id' as identifier_type,
    customer_id as identifier_value,
    customer_id
from {{ ref('stg_phasegate__customers') }}
where customer_id is not null
