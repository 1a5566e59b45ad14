{#- Whether identifier (type_1, value_1) sorts before or equal to (type_2, value_2): the
    canonical orientation of an undirected identity link. Both sides must be non-null. -#}
{% macro identifier_precedes(type_1, value_1, type_2, value_2) -%}
  ({{ type_1 }} < {{ type_2 }} or ({{ type_1 }} = {{ type_2 }} and {{ value_1 }} <= {{ value_2 }}))
{%- endmacro %}

{#- CTE definitions (comma-separated, for a model's `with`) ending in `name`: every link of
    `links` (a relation or CTE with type_a, value_a, type_b, value_b, observed_at; values
    non-null) once per direction, as from_type, from_value, to_type, to_value and the latest
    observed_at. Links are grouped once in a canonical orientation (lesser identifier first)
    and then turned both ways: grouping the 9.7 M directed links of a 1M-customer graph took
    11.5 s, twice the cost of grouping the undirected ones. The orientation is two filtered
    selects rather than `case` keys, whose estimates misled DuckDB's join planning downstream.
    A link from an identifier to itself is one row. -#}
{% macro identity_links_both_ways_ctes(links, name) %}
{{ name }}__oriented as (
    select type_a as type_lo, value_a as value_lo, type_b as type_hi, value_b as value_hi, observed_at
    from {{ links }}
    where {{ phasegate.identifier_precedes('type_a', 'value_a', 'type_b', 'value_b') }}
    union all
    select type_b, value_b, type_a, value_a, observed_at
    from {{ links }}
    where not {{ phasegate.identifier_precedes('type_a', 'value_a', 'type_b', 'value_b') }}
),

{{ name }}__undirected as (
    select type_lo, value_lo, type_hi, value_hi, max(observed_at) as observed_at
    from {{ name }}__oriented
    group by type_lo, value_lo, type_hi, value_hi
),

{{ name }} as (
    select type_lo as from_type, value_lo as from_value, type_hi as to_type, value_hi as to_value, observed_at
    from {{ name }}__undirected
    union all
    select type_hi, value_hi, type_lo, value_lo, observed_at
    from {{ name }}__undirected
    where not (type_lo = type_hi and value_lo = value_hi)
)
{% endmacro %}
