{#- Model-derived signals: columns of other relations (a P(alive) score from a customer-base
    model, a propensity table written by a Python job) joined onto the signals as ordinary
    columns, so predicates and syncs use them like any other signal. Each entry is
      {model: <dbt model name> | schema: <schema>, table: <table>[, database: <db>],
       key: <customer id column>, columns: [<col>, ...], as_of_column: <date column>?}
    With as_of_column, each customer's latest row on or before the evaluation date is used
    (point in time, so backfills see the score as it was); without it the key must be unique. -#}
{% macro signal_relations() %}
  {% do return(var('phasegate__signal_relations', [])) %}
{% endmacro %}

{% macro signal_relation_column_names() %}
  {% set names = [] %}
  {% for r in phasegate.signal_relations() if r is mapping %}
    {% for c in (r.get('columns') or []) %}{% do names.append(c) %}{% endfor %}
  {% endfor %}
  {% do return(names) %}
{% endmacro %}

{% macro signal_relation(r) %}
  {% if r.get('model') %}
    {% do return(ref(r.model)) %}
  {% endif %}
  {% do return(api.Relation.create(database=r.get('database', target.database), schema=r.schema, identifier=r.table)) %}
{% endmacro %}

{#- Problems with phasegate__signal_relations, for validate_config. -#}
{% macro signal_relation_errors(taken) %}
  {% set errors = [] %}
  {% set relations = phasegate.signal_relations() %}
  {% if relations is string or relations is mapping %}
    {% do return(["phasegate__signal_relations: must be a list of {model | schema + table, key, columns}"]) %}
  {% endif %}
  {% set seen = [] %}
  {% for r in relations %}
    {% set where = "phasegate__signal_relations #" ~ loop.index %}
    {% if r is not mapping %}
      {% do errors.append(where ~ ": must be a mapping {model | schema + table, key, columns, as_of_column?}") %}
    {% else %}
      {% for k in r.keys() if k not in ['model', 'schema', 'table', 'database', 'key', 'columns', 'as_of_column'] %}
        {% do errors.append(where ~ ": unknown field `" ~ k ~ "`; allowed: model, schema, table, database, key, columns, as_of_column") %}
      {% endfor %}
      {% if not r.get('model') and not (r.get('schema') and r.get('table')) %}
        {% do errors.append(where ~ ": set `model` (a dbt model) or `schema` and `table` (a table written outside dbt)") %}
      {% endif %}
      {% for f in ['model', 'schema', 'table', 'key', 'as_of_column'] if r.get(f) is not none and not phasegate.is_safe_identifier(r.get(f)) %}
        {% do errors.append(where ~ ", field `" ~ f ~ "`: `" ~ r.get(f) ~ "` is not a safe name; use lowercase letters, digits and _") %}
      {% endfor %}
      {% if not r.get('key') %}
        {% do errors.append(where ~ ", field `key`: required, the column holding the customer id") %}
      {% endif %}
      {% set cols = r.get('columns') %}
      {% if cols is string or cols is mapping or not cols %}
        {% do errors.append(where ~ ", field `columns`: a non-empty list of column names to use as signals") %}
      {% else %}
        {% for c in cols %}
          {% if not phasegate.is_safe_identifier(c) %}
            {% do errors.append(where ~ ", field `columns`: `" ~ c ~ "` is not a safe name") %}
          {% elif c in taken or c in seen %}
            {% do errors.append(where ~ ", field `columns`: `" ~ c ~ "` is already a signal name; rename it in a model or drop it") %}
          {% endif %}
          {% do seen.append(c) %}
        {% endfor %}
      {% endif %}
    {% endif %}
  {% endfor %}
  {% do return(errors) %}
{% endmacro %}
