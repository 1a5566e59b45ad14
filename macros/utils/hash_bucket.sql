{#- A stable bucket in [0, buckets) from text: the first 32 bits of its md5, so every
    warehouse puts the same value in the same bucket (holdout assignment depends on it). -#}
{% macro hash_bucket(expr, buckets=10000) %}
  {{- return(adapter.dispatch('hash_bucket', 'phasegate')(expr, buckets)) -}}
{% endmacro %}

{#- Postgres and Redshift-like: hex -> bit(32) -> bigint reads the bits unsigned. -#}
{% macro default__hash_bucket(expr, buckets) -%}
  mod(cast(cast({{ dbt.concat(["'x'", "substr(" ~ dbt.hash(expr) ~ ", 1, 8)"]) }} as bit(32)) as bigint), {{ buckets }})
{%- endmacro %}

{% macro duckdb__hash_bucket(expr, buckets) -%}
  mod(cast({{ dbt.concat(["'0x'", "substr(" ~ dbt.hash(expr) ~ ", 1, 8)"]) }} as bigint), {{ buckets }})
{%- endmacro %}

{#- Not exercised in CI here (no such warehouse); written to each platform's documented
    hex conversion. -#}
{% macro snowflake__hash_bucket(expr, buckets) -%}
  mod(to_number(substr({{ dbt.hash(expr) }}, 1, 8), 'XXXXXXXX'), {{ buckets }})
{%- endmacro %}

{% macro bigquery__hash_bucket(expr, buckets) -%}
  mod(cast(concat('0x', substr({{ dbt.hash(expr) }}, 1, 8)) as int64), {{ buckets }})
{%- endmacro %}

{% macro databricks__hash_bucket(expr, buckets) -%}
  mod(cast(conv(substr({{ dbt.hash(expr) }}, 1, 8), 16, 10) as bigint), {{ buckets }})
{%- endmacro %}

{% macro spark__hash_bucket(expr, buckets) -%}
  {{ phasegate.databricks__hash_bucket(expr, buckets) }}
{%- endmacro %}

{#- A fixed-width hash of a text key, for finding keys that occur more than once: grouping
    78 M event ids as text cost a 1M-customer full build 66 CPU-s. Collisions are harmless
    where it is used (a key wrongly thought repeated is ranked by its real value, and ranks
    first). Where no cheap native hash is known the key itself is returned. -#}
{% macro grouping_hash(expr) %}
  {{- return(adapter.dispatch('grouping_hash', 'phasegate')(expr)) -}}
{% endmacro %}

{% macro default__grouping_hash(expr) -%}
  {{ expr }}
{%- endmacro %}

{% macro duckdb__grouping_hash(expr) -%}
  hash({{ expr }})
{%- endmacro %}

{% macro postgres__grouping_hash(expr) -%}
  hashtextextended({{ expr }}, 0)
{%- endmacro %}

{#- A select of one column, `repeated_value`: each value of `expr` over the rows of `source`
    (a relation with its alias, or a subquery) where `condition` holds that occurs more than
    once. Nulls are not values here. On DuckDB the values are sorted and compared with their
    neighbour: a hash aggregate of 77 M distinct 64-bit hashes took 8.2 s on 2 cores, sorting
    them 3.5 s (most of a 1M-customer full build's keys are distinct, so grouping builds a
    table as large as the input). -#}
{% macro repeated_values(expr, source, condition='1 = 1') %}
  {{- return(adapter.dispatch('repeated_values', 'phasegate')(expr, source, condition)) -}}
{% endmacro %}

{% macro default__repeated_values(expr, source, condition) -%}
select {{ expr }} as repeated_value
from {{ source }}
where {{ condition }} and {{ expr }} is not null
group by {{ expr }}
having count(*) > 1
{%- endmacro %}

{% macro duckdb__repeated_values(expr, source, condition) -%}
select distinct s.repeated_value
from (
    select v.value as repeated_value, lag(v.value) over (order by v.value) as previous_value
    from (select {{ expr }} as value from {{ source }} where {{ condition }}) as v
) as s
where s.repeated_value = s.previous_value
{%- endmacro %}
