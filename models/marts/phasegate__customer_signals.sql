{#- Every registered signal per customer, as of the evaluation date. -#}
{{ phasegate.customer_signals_sql(
    phasegate.as_of_date(),
    ref('int_customer_days_aggregated'),
    ref('stg_phasegate__customers'),
    ref('stg_phasegate__consents')) }}
