{#- Whether an incremental model can ask the warehouse about its stored table while being
    compiled: only when executing an incremental run of a real relation. A dbt unit test
    renders `this` as the name of its fixture CTE, which no query can read, so models keep
    an all-SQL path for it. -#}
{% macro stored_table_readable() %}
  {%- do return(execute and is_incremental() and this is not string) -%}
{% endmacro %}
