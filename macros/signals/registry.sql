{#- The signal registry. A signal is one column of phasegate__customer_signals, computed per
    customer as of the evaluation date from the daily activity table. Kinds:
      sum             sum of a daily column (or list of columns), optionally over the last
                      `days` days ending `offset_days` before the as-of date
      active_days     days with the column > 0, optionally over a window
      days_since_last days since the last day the column was > 0 (null if never)
      days_since_first
      expression      SQL over built-in columns and earlier signals (ratios, flags)
      consent         the latest consent status for `channel` (true only when granted)
    Built-in columns always present: days_since_signup, signup_on, country.
    Users add or override signals by name with `phasegate__signals: [...]`. -#}

{% macro default_signals() %}
  {% do return([
    {'name': 'orders_lifetime', 'kind': 'sum', 'column': 'order_events'},
    {'name': 'revenue_lifetime', 'kind': 'sum', 'column': 'order_amount'},
    {'name': 'orders_last_30d', 'kind': 'sum', 'column': 'order_events', 'days': 30},
    {'name': 'orders_last_90d', 'kind': 'sum', 'column': 'order_events', 'days': 90},
    {'name': 'revenue_last_90d', 'kind': 'sum', 'column': 'order_amount', 'days': 90},
    {'name': 'days_since_last_order', 'kind': 'days_since_last', 'column': 'order_events'},
    {'name': 'days_since_first_order', 'kind': 'days_since_first', 'column': 'order_events'},
    {'name': 'days_since_last_seen', 'kind': 'days_since_last', 'column': 'inbound_events'},
    {'name': 'sessions_last_7d', 'kind': 'sum',
     'column': ['page_view_events', 'app_open_events'], 'days': 7},
    {'name': 'sessions_prev_28d', 'kind': 'sum',
     'column': ['page_view_events', 'app_open_events'], 'days': 28, 'offset_days': 7},
    {'name': 'active_days_last_30d', 'kind': 'active_days', 'column': 'inbound_events', 'days': 30},
    {'name': 'email_clicks_last_30d', 'kind': 'sum', 'column': 'email_click_events', 'days': 30},
    {'name': 'carts_last_7d', 'kind': 'sum', 'column': 'add_to_cart_events', 'days': 7},
    {'name': 'engagement_velocity', 'kind': 'expression',
     'sql': 'cast(sessions_last_7d as double precision) / nullif(sessions_prev_28d / 4.0, 0)'},
    {'name': 'consent_email', 'kind': 'consent', 'channel': 'email'},
    {'name': 'consent_sms', 'kind': 'consent', 'channel': 'sms'},
    {'name': 'consent_push', 'kind': 'consent', 'channel': 'push'},
    {'name': 'consent_ads', 'kind': 'consent', 'channel': 'ads'}
  ]) %}
{% endmacro %}

{% macro builtin_signal_columns() %}
  {% do return(['days_since_signup', 'signup_on', 'country']) %}
{% endmacro %}

{% macro signals() %}
  {% set by_name = {} %}
  {% set order = [] %}
  {% for s in phasegate.default_signals() + var('phasegate__signals', []) %}
    {% if s.name not in by_name %}{% do order.append(s.name) %}{% endif %}
    {% do by_name.update({s.name: s}) %}
  {% endfor %}
  {% set result = [] %}
  {% for n in order %}
    {% if not by_name[n].get('enabled', true) == false %}{% do result.append(by_name[n]) %}{% endif %}
  {% endfor %}
  {% do return(result) %}
{% endmacro %}

{% macro signal_names() %}
  {% set names = phasegate.builtin_signal_columns() %}
  {% for s in phasegate.signals() %}{% do names.append(s.name) %}{% endfor %}
  {% do names.extend(phasegate.signal_relation_column_names()) %}
  {% do return(names) %}
{% endmacro %}

{#- The aggregates over one customer-day's usable validated events that make those columns
    (daily_activity_columns, in that order), for int_customer_days_aggregated and for the
    additions the activity summary applies (its `added_days`). -#}
{% macro daily_activity_aggregates() -%}
    cast(count(*) as {{ dbt.type_bigint() }}) as all_events,
    cast({{ phasegate.count_where('event_type not in (' ~ phasegate.quoted_list(phasegate.outbound_event_types()) ~ ')') }}
        as {{ dbt.type_bigint() }}) as inbound_events,
    cast({{ phasegate.sum_where('amount', "event_type = '" ~ phasegate.order_event_type() ~ "'") }}
        as {{ dbt.type_numeric() }}) as order_amount
    {%- for t in phasegate.event_types() %},
    cast({{ phasegate.count_where("event_type = '" ~ t ~ "'") }} as {{ dbt.type_bigint() }}) as {{ t }}_events
    {%- endfor %}
{%- endmacro %}

{#- Columns of int_customer_days_aggregated that signals may read. -#}
{% macro daily_activity_columns() %}
  {% set cols = ['all_events', 'inbound_events', 'order_amount'] %}
  {% for t in phasegate.event_types() %}{% do cols.append(t ~ '_events') %}{% endfor %}
  {% do return(cols) %}
{% endmacro %}
