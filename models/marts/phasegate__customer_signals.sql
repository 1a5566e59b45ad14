{#- Every registered signal per customer, as of the evaluation date. -#}
{{ phasegate.customer_signals_sql(
    phasegate.as_of_date(),
    ref('int_customer_days_aggregated'),
    ref('int_customers_unioned'),
    ref('int_consents_unioned')) }}
