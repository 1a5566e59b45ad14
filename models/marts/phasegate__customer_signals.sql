{#- Every registered signal per customer, as of the evaluation date. Activity signals come
    from the incremental summary (day counters are computed here, from its dates), so a
    daily run reads one row per active customer instead of aggregating all history. -#}
{{ phasegate.customer_signals_sql(
    phasegate.as_of_date(),
    none,
    ref('int_customers_unioned'),
    ref('int_consents_unioned'),
    activity=ref('int_customer_activity_summarized')) }}
