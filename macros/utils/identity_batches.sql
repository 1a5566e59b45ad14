{#- Bookkeeping of the incremental identity graph: edges and the identifier map stamp the
    rows each run writes with a batch number (batch_number_floor: numbers only grow, also
    across a rebuild), and each reader keeps the highest batch it has read. -#}

{#- A pre-hook for incremental models that gained bookkeeping columns in a phasegate
    upgrade: a stored table built before lacks `columns` (name -> type), which the model's
    SQL reads. They are added, instead of the run failing on a missing column. With `reset`
    the stored rows are deleted too, so the run rebuilds the table in place (for models that
    were tables before, whose rows carry no bookkeeping); without it the new columns are null
    on old rows, which the model must read as "never read" (int_events_validated). -#}
{% macro adopt_incremental_columns(columns, reset=true) %}
    {%- if execute and is_incremental() -%}
        {%- set present = [] -%}
        {%- for c in adapter.get_columns_in_relation(this) -%}{%- do present.append(c.name | lower) -%}{%- endfor -%}
        {%- set missing = [] -%}
        {%- for name, type in columns.items() -%}
            {%- if name not in present -%}{%- do missing.append((name, type)) -%}{%- endif -%}
        {%- endfor -%}
        {%- if missing -%}
            {%- for name, type in missing %}
            alter table {{ this }} add column {{ name }} {{ type }};
            {%- endfor %}
            {%- if reset %}
            delete from {{ this }}
            {%- endif %}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}

{#- What the normalisation of identity links depends on besides the link itself: the
    blocklist and the rules' version. Stored on every edge; a change rewrites every link. -#}
{% macro identity_normalized_with(blocklist) -%}
    {%- set text = 'v1|' ~ (blocklist | sort | join('|')) -%}
    {{ dbt.hash("'" ~ (text | replace("'", "''")) ~ "'") }}
{%- endmacro %}

{#- The settings the identifier map depends on; a change recomputes all of it. -#}
{% macro identity_stitch_settings() -%}
    '{{ phasegate.identity_max_hops() }}/{{ phasegate.identity_max_links() }}/{{ phasegate.identity_max_identifiers_per_customer() }}'
{%- endmacro %}

{#- Whether an edge row is a link the sources still hold (not a removed link's tombstone). -#}
{% macro link_is_current(alias) -%}
    ({{ alias }}.drop_reason is null or {{ alias }}.drop_reason <> 'link_removed')
{%- endmacro %}
