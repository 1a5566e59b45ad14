{#- Identifier links from every enabled source. Segment identify calls link the anonymous
    id, and any email, phone and device id traits, to the user id. -#}
{%- set parts = [] %}
{%- if phasegate.using_generic_source() %}
{%- do parts.append("select identity_type_a, identity_value_a, identity_type_b, identity_value_b, observed_at from "
    ~ ref('stg_phasegate__identities')) %}
{%- endif %}
{%- if phasegate.using_segment() %}
{%- for kind, col in [('anonymous_id', 'anonymous_id'), ('email', 'email'), ('phone', 'phone'), ('device_id', 'device_id')] %}
{%- do parts.append("select 'user_id' as identity_type_a, user_id as identity_value_a, '" ~ kind
    ~ "' as identity_type_b, " ~ col ~ " as identity_value_b, received_at as observed_at from "
    ~ ref('stg_segment__identifies') ~ " where user_id is not null and " ~ col ~ " is not null") %}
{%- endfor %}
{%- endif %}
{%- if parts | length == 0 %}
{%- do parts.append("select cast(null as " ~ dbt.type_string() ~ ") as identity_type_a, cast(null as "
    ~ dbt.type_string() ~ ") as identity_value_a, cast(null as " ~ dbt.type_string()
    ~ ") as identity_type_b, cast(null as " ~ dbt.type_string() ~ ") as identity_value_b, cast(null as "
    ~ dbt.type_timestamp() ~ ") as observed_at where 1 = 0") %}
{%- endif %}
{{ parts | join('\nunion all\n') }}
