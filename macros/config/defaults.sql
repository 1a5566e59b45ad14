{#- Every configurable value of the package, read from flat `phasegate__*` vars with the
    defaults below. Models and macros call these getters, never var() directly, so that a
    default is defined exactly once. -#}

{% macro default_event_types() %}
  {% do return([
    'page_view', 'app_open', 'email_sent', 'email_open', 'email_click', 'sms_sent',
    'sms_click', 'push_open', 'add_to_cart', 'checkout', 'order'
  ]) %}
{% endmacro %}

{% macro event_types() %}
  {% do return(var('phasegate__event_types', phasegate.default_event_types())) %}
{% endmacro %}

{#- Sends the customer did not initiate: they do not count as the customer being "seen". -#}
{% macro outbound_event_types() %}
  {% do return(var('phasegate__outbound_event_types', ['email_sent', 'sms_sent'])) %}
{% endmacro %}

{% macro order_event_type() %}
  {% do return(var('phasegate__order_event_type', 'order')) %}
{% endmacro %}

{% macro consent_channels() %}
  {% do return(var('phasegate__consent_channels', ['email', 'sms', 'push', 'ads'])) %}
{% endmacro %}

{#- Days before the watermark that every incremental run recomputes, for late events. -#}
{% macro lookback_days() %}
  {% do return(var('phasegate__lookback_days', 3) | int) %}
{% endmacro %}

{#- An event whose occurred_at is later than received_at by more than this is a clock error. -#}
{% macro clock_skew_minutes() %}
  {% do return(var('phasegate__clock_skew_minutes', 60) | int) %}
{% endmacro %}

{% macro default_journeys() %}
  {% do return({
    'lifecycle': {
      'default_phase': 'prospect',
      'min_dwell_days': 3,
      'phases': [
        {'name': 'onboarding', 'when': 'days_since_signup <= 30 and orders_lifetime = 0'},
        {'name': 'active', 'when': 'days_since_last_order <= 60'},
        {'name': 'at_risk', 'when': 'days_since_last_order between 61 and 120',
         'from': ['active', 'win_back']},
        {'name': 'lapsed', 'when': 'days_since_last_order > 120'},
        {'name': 'win_back', 'when': 'orders_last_30d > 0', 'from': ['lapsed'],
         'min_dwell_days': 30}
      ]
    }
  }) %}
{% endmacro %}

{% macro journeys() %}
  {% do return(var('phasegate__journeys', phasegate.default_journeys())) %}
{% endmacro %}

{#- Windows (days) of the transition matrix mart. -#}
{% macro transition_windows() %}
  {% do return(var('phasegate__transition_windows_days', [7, 30, 90])) %}
{% endmacro %}

{#- Identity stitching guards. -#}
{% macro identity_blocklist() %}
  {% set defaults = ['test@test.com', 'test@example.com', 'email@example.com', 'noreply@example.com',
      'no-reply@example.com', 'none@none.com', 'null@null.com', '0000000000', '+0000000000',
      '1234567890', '+11234567890', '00000000-0000-0000-0000-000000000000', 'unknown', 'null',
      'undefined', 'none', 'anonymous', 'n/a'] %}
  {% set values = [] %}
  {% for v in var('phasegate__identity_blocklist', defaults) %}{% do values.append(v | string | trim | lower) %}{% endfor %}
  {% do return(values) %}
{% endmacro %}

{#- A non-user identifier linked to more distinct identifiers than this is a hub (a shared
    device, a family email, a call-centre phone) and links nobody. -#}
{% macro identity_max_links() %}
  {% do return(var('phasegate__identity_max_links', 25) | int) %}
{% endmacro %}

{% macro identity_max_identifiers_per_customer() %}
  {% do return(var('phasegate__identity_max_identifiers_per_customer', 50) | int) %}
{% endmacro %}

{#- Graph hops searched from each customer's user_id (user -> anonymous id -> device is 2). -#}
{% macro identity_max_hops() %}
  {% do return(var('phasegate__identity_max_hops', 4) | int) %}
{% endmacro %}

{#- Which sources feed the staging shapes. -#}
{% macro using_generic_source() %}
  {% do return(var('phasegate__using_generic_source', true)) %}
{% endmacro %}

{% macro using_segment() %}
  {% do return(var('phasegate__using_segment', false)) %}
{% endmacro %}

{#- Segment/RudderStack event names -> phasegate event types (Segment's e-commerce and
    engagement spec names). Unmapped events become their snake_case name, which is
    quarantined as unknown unless listed in phasegate__event_types. -#}
{% macro segment_event_map() %}
  {% do return(var('phasegate__segment_event_map', {
    'Order Completed': 'order', 'Product Added': 'add_to_cart', 'Checkout Started': 'checkout',
    'Email Delivered': 'email_sent', 'Email Sent': 'email_sent', 'Email Opened': 'email_open',
    'Email Link Clicked': 'email_click', 'SMS Sent': 'sms_sent', 'SMS Link Clicked': 'sms_click',
    'Push Notification Tapped': 'push_open', 'Application Opened': 'app_open'
  })) %}
{% endmacro %}

{#- Activation governance. Suppressions come from an optional source table. -#}
{% macro using_suppressions() %}
  {% do return(var('phasegate__using_suppressions', true)) %}
{% endmacro %}

{#- Holdouts: a customer's bucket depends only on the salt, the journey and the customer id,
    so assignment is stable across runs and dates; raising a percentage only adds customers. -#}
{% macro holdout_salt() %}
  {% do return(var('phasegate__holdout_salt', 'phasegate-holdout-v1') | string) %}
{% endmacro %}

{% macro global_holdout_pct() %}
  {% do return(var('phasegate__global_holdout_pct', 0)) %}
{% endmacro %}

{#- Lower numbers act first when several journeys want the same customer (frequency caps). -#}
{% macro default_journey_priority() %}
  {% do return(100) %}
{% endmacro %}
