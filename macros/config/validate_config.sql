{#- Runs at on-run-start: checks every phasegate var and fails the run before any model
    builds, listing each problem with where it is and how to fix it. Returns no SQL. -#}
{% macro validate_config() %}
  {% set errors = phasegate.config_errors() + phasegate.missing_source_errors() %}
  {% if errors | length > 0 %}
    {{ exceptions.raise_compiler_error(
        "phasegate configuration is invalid (" ~ (errors | length) ~ " problem(s)):\n  - "
        ~ (errors | join("\n  - "))
        ~ "\nFix the vars under `vars: phasegate:` in dbt_project.yml (see README, Configuration).") }}
  {% endif %}
{% endmacro %}

{#- The optional suppressions table is on by default; without this check a new project that
    has none fails deep in the build with the warehouse's "table does not exist". Checked only
    when models are built (`dbt seed` may be what creates it), and skipped when a seed of that
    name will create it in the same build. -#}
{% macro missing_source_errors() %}
  {% set errs = [] %}
  {% set which = flags.WHICH if (flags is defined and flags.WHICH is defined) else none %}
  {% if not execute or which not in ['run', 'build'] or not phasegate.using_suppressions() %}
    {% do return(errs) %}
  {% endif %}
  {% set identifier = var('phasegate__suppressions_identifier', 'suppressions') %}
  {% for node in graph.nodes.values() if node.resource_type == 'seed' and node.name == identifier %}
    {% do return(errs) %}
  {% endfor %}
  {% set database = var('phasegate__governance_database', var('phasegate__source_database', target.database)) %}
  {% set schema = var('phasegate__governance_schema', var('phasegate__source_schema', 'phasegate_raw')) %}
  {% if adapter.get_relation(database=database, schema=schema, identifier=identifier) is none %}
    {% do errs.append(
        "phasegate__using_suppressions is true (the default) but the suppressions table "
        ~ schema ~ "." ~ identifier ~ " does not exist. Create it (columns identifier_type, "
        ~ "identifier_value, action, reason, requested_at; it may be empty), point "
        ~ "phasegate__governance_schema / phasegate__suppressions_identifier at yours, or set "
        ~ "phasegate__using_suppressions: false") %}
  {% endif %}
  {% do return(errs) %}
{% endmacro %}

{% macro is_safe_identifier(value) %}
  {% do return(value is string and modules.re.match('^[a-z][a-z0-9_]{0,62}$', value) is not none) %}
{% endmacro %}

{% macro predicate_keywords() %}
  {% do return([
    'and', 'or', 'not', 'between', 'is', 'null', 'in', 'true', 'false', 'case', 'when',
    'then', 'else', 'end', 'like', 'coalesce', 'nullif', 'abs', 'least', 'greatest', 'cast',
    'as', 'integer', 'int', 'bigint', 'double', 'precision', 'numeric', 'decimal', 'float',
    'real', 'date', 'boolean', 'varchar', 'round', 'floor', 'ceil', 'ln', 'exp', 'sqrt',
    'power', 'mod', 'distinct', 'from'
  ]) %}
{% endmacro %}

{#- Problems with a SQL predicate or expression over signal columns: it may reference only
    known columns and keywords, and contain no statement separators or comments. -#}
{% macro sql_fragment_errors(where, sql, known) %}
  {% set errs = [] %}
  {% if sql is not string or sql | trim == '' %}
    {% do errs.append(where ~ ": must be a non-empty SQL expression string") %}
    {% do return(errs) %}
  {% endif %}
  {% for bad in [';', '--', '/*', '*/', '"', '`', '\\'] %}
    {% if bad in sql %}
      {% do errs.append(where ~ ": contains `" ~ bad ~ "`; a predicate is one SQL expression over signal columns") %}
    {% endif %}
  {% endfor %}
  {% if (sql.count("'") % 2) != 0 %}
    {% do errs.append(where ~ ": unbalanced single quote in `" ~ sql ~ "`") %}
  {% endif %}
  {% set without_strings = modules.re.sub("'[^']*'", "''", sql) %}
  {% set allowed = phasegate.predicate_keywords() %}
  {% for tok in modules.re.findall('[A-Za-z_][A-Za-z0-9_]*', without_strings) %}
    {% if tok | lower not in allowed and tok not in known %}
      {% do errs.append(where ~ ": unknown column `" ~ tok ~ "` in `" ~ sql ~ "`; known signal columns: " ~ (known | join(', '))) %}
    {% endif %}
  {% endfor %}
  {% do return(errs) %}
{% endmacro %}

{% macro config_errors() %}
  {% set errors = [] %}

  {# Event types become column names. #}
  {% set event_types = phasegate.event_types() %}
  {% if event_types is string or event_types is mapping or event_types | length == 0 %}
    {% do errors.append("phasegate__event_types: must be a non-empty list of event type names") %}
    {% set event_types = [] %}
  {% endif %}
  {% for t in event_types %}
    {% if not phasegate.is_safe_identifier(t) %}
      {% do errors.append("phasegate__event_types: `" ~ t ~ "` is not a safe name; use lowercase letters, digits and _ (starting with a letter)") %}
    {% endif %}
  {% endfor %}
  {% if phasegate.order_event_type() not in event_types %}
    {% do errors.append("phasegate__order_event_type: `" ~ phasegate.order_event_type() ~ "` is not in phasegate__event_types") %}
  {% endif %}
  {% for ch in phasegate.consent_channels() %}
    {% if not phasegate.is_safe_identifier(ch) %}
      {% do errors.append("phasegate__consent_channels: `" ~ ch ~ "` is not a safe name") %}
    {% endif %}
  {% endfor %}
  {% set lookback = var('phasegate__lookback_days', 3) %}
  {% if lookback is not number or lookback < 0 %}
    {% do errors.append("phasegate__lookback_days: must be a whole number of days >= 0, got `" ~ lookback ~ "`") %}
  {% endif %}
  {% set as_of = phasegate.as_of_setting() %}
  {% if as_of is string and as_of != '' and modules.re.match('^\\d{4}-\\d{2}-\\d{2}$', as_of) is none %}
    {% set where = 'phasegate__as_of' if var('phasegate__as_of', none) not in [none, ''] else 'PHASEGATE_AS_OF (environment)' %}
    {% do errors.append(where ~ ": `" ~ as_of ~ "` is not a date; use YYYY-MM-DD") %}
  {% endif %}

  {% set global_pct = phasegate.global_holdout_pct() %}
  {% if global_pct is not number or global_pct < 0 or global_pct > 100 %}
    {% do errors.append("phasegate__global_holdout_pct: must be a percentage between 0 and 100, got `" ~ global_pct ~ "`") %}
  {% endif %}
  {% if phasegate.holdout_salt() | trim == '' %}
    {% do errors.append("phasegate__holdout_salt: must be a non-empty string; changing it reshuffles every holdout group") %}
  {% endif %}

  {% if not phasegate.using_generic_source() and not phasegate.using_segment() %}
    {% do errors.append("sources: no source enabled; set phasegate__using_generic_source: true or phasegate__using_segment: true") %}
  {% endif %}

  {# Signals. #}
  {% set daily_cols = phasegate.daily_activity_columns() %}
  {% set reserved = ['customer_id', 'as_of_date', 'first_seen_on', 'last_seen_on'] + phasegate.builtin_signal_columns() %}
  {% set seen = [] %}
  {% set known_so_far = phasegate.builtin_signal_columns() + phasegate.signal_relation_column_names() %}
  {% for s in phasegate.signals() %}
    {% set where = "signal `" ~ s.get('name') ~ "`" %}
    {% if not phasegate.is_safe_identifier(s.get('name')) %}
      {% do errors.append("phasegate__signals: `" ~ s.get('name') ~ "` is not a safe signal name; use lowercase letters, digits and _") %}
    {% elif s.name in reserved %}
      {% do errors.append(where ~ ": name is reserved by phasegate; choose another name") %}
    {% endif %}
    {% set kind = s.get('kind') %}
    {% if kind in ('sum', 'active_days', 'days_since_last', 'days_since_first') %}
      {% set cols = s.get('column') %}
      {% set cols = [cols] if cols is string else (cols or []) %}
      {% if cols | length == 0 %}
        {% do errors.append(where ~ ", field `column`: required for kind `" ~ kind ~ "`; one of " ~ (daily_cols | join(', '))) %}
      {% endif %}
      {% for c in cols %}
        {% if c not in daily_cols %}
          {% do errors.append(where ~ ", field `column`: unknown daily column `" ~ c ~ "`; one of " ~ (daily_cols | join(', '))) %}
        {% endif %}
      {% endfor %}
      {% for f in ['days', 'offset_days'] %}
        {% if s.get(f) is not none and (s.get(f) is not number or s.get(f) < (1 if f == 'days' else 0)) %}
          {% do errors.append(where ~ ", field `" ~ f ~ "`: must be a whole number of days" ~ (" >= 1" if f == 'days' else " >= 0")) %}
        {% endif %}
      {% endfor %}
    {% elif kind == 'expression' %}
      {% do errors.extend(phasegate.sql_fragment_errors(where ~ ", field `sql`", s.get('sql'), known_so_far)) %}
    {% elif kind == 'consent' %}
      {% if s.get('channel') not in phasegate.consent_channels() %}
        {% do errors.append(where ~ ", field `channel`: `" ~ s.get('channel') ~ "` is not in phasegate__consent_channels (" ~ (phasegate.consent_channels() | join(', ')) ~ ")") %}
      {% endif %}
    {% else %}
      {% do errors.append(where ~ ", field `kind`: unknown kind `" ~ kind ~ "`; use sum, active_days, days_since_last, days_since_first, expression or consent") %}
    {% endif %}
    {% if s.get('name') is string %}{% do known_so_far.append(s.name) %}{% endif %}
  {% endfor %}

  {% set taken = ['customer_id', 'as_of_date', 'first_seen_on', 'last_seen_on'] + phasegate.builtin_signal_columns() %}
  {% for s in phasegate.signals() %}{% do taken.append(s.name) %}{% endfor %}
  {% do errors.extend(phasegate.signal_relation_errors(taken)) %}

  {# Journeys. #}
  {% set known_signals = phasegate.signal_names() %}
  {% set journeys = phasegate.journeys() %}
  {% if journeys is not mapping or journeys | length == 0 %}
    {% do errors.append("phasegate__journeys: must be a mapping of journey name to {default_phase, phases}") %}
    {% set journeys = {} %}
  {% endif %}
  {% for jname, j in journeys.items() %}
    {% set jwhere = "journey `" ~ jname ~ "`" %}
    {% if not phasegate.is_safe_identifier(jname) %}
      {% do errors.append(jwhere ~ ": name is not safe; use lowercase letters, digits and _ (starting with a letter)") %}
    {% endif %}
    {% if j is not mapping %}
      {% do errors.append(jwhere ~ ": must be a mapping with default_phase and phases") %}
    {% else %}
      {% set default_phase = j.get('default_phase') %}
      {% if not phasegate.is_safe_identifier(default_phase) %}
        {% do errors.append(jwhere ~ ", field `default_phase`: required, a safe phase name such as `prospect`") %}
      {% endif %}
      {% for key in ['holdout_pct'] if j.get(key) is not none %}
        {% if j.get(key) is not number or j.get(key) < 0 or j.get(key) > 100 %}
          {% do errors.append(jwhere ~ ", field `holdout_pct`: must be a percentage between 0 and 100, got `" ~ j.get(key) ~ "`") %}
        {% endif %}
      {% endfor %}
      {% if j.get('priority') is not none and (j.get('priority') is not number or j.get('priority') != (j.get('priority') | int)) %}
        {% do errors.append(jwhere ~ ", field `priority`: must be a whole number (lower acts first), got `" ~ j.get('priority') ~ "`") %}
      {% endif %}
      {% for unknown_key in j.keys() if unknown_key not in ['default_phase', 'min_dwell_days', 'phases', 'holdout_pct', 'priority', 'description'] %}
        {% do errors.append(jwhere ~ ": unknown field `" ~ unknown_key ~ "`; allowed: default_phase, min_dwell_days, phases, holdout_pct, priority, description") %}
      {% endfor %}
      {% set dwell = j.get('min_dwell_days', 0) %}
      {% if dwell is not number or dwell < 0 %}
        {% do errors.append(jwhere ~ ", field `min_dwell_days`: must be a whole number of days >= 0") %}
      {% endif %}
      {% set phases = j.get('phases') %}
      {% if phases is string or phases is mapping or not phases %}
        {% do errors.append(jwhere ~ ", field `phases`: must be a non-empty list of {name, when}") %}
        {% set phases = [] %}
      {% endif %}
      {% set names = [default_phase] %}
      {% for p in phases %}
        {% set pname = p.get('name') if p is mapping else none %}
        {% if pname in names %}
          {% do errors.append(jwhere ~ ", phase `" ~ pname ~ "`: duplicate phase name (the default_phase counts too); phase names must be unique per journey") %}
        {% endif %}
        {% do names.append(pname) %}
      {% endfor %}
      {% for p in phases %}
        {% if p is not mapping %}
          {% do errors.append(jwhere ~ ", phase #" ~ loop.index ~ ": must be a mapping {name, when, from?, min_dwell_days?}") %}
        {% else %}
          {% set pwhere = jwhere ~ ", phase `" ~ p.get('name') ~ "`" %}
          {% if not phasegate.is_safe_identifier(p.get('name')) %}
            {% do errors.append(pwhere ~ ", field `name`: not a safe phase name; use lowercase letters, digits and _") %}
          {% endif %}
          {% for unknown_key in p.keys() if unknown_key not in ['name', 'when', 'from', 'min_dwell_days', 'description'] %}
            {% do errors.append(pwhere ~ ": unknown field `" ~ unknown_key ~ "`; allowed: name, when, from, min_dwell_days, description") %}
          {% endfor %}
          {% do errors.extend(phasegate.sql_fragment_errors(pwhere ~ ", field `when`", p.get('when'), known_signals)) %}
          {% set sources = p.get('from') %}
          {% if sources is not none %}
            {% if sources is string %}{% set sources = [sources] %}{% endif %}
            {% for src in sources %}
              {% if src not in names %}
                {% do errors.append(pwhere ~ ", field `from`: unknown phase `" ~ src ~ "`; phases of this journey: " ~ (names | join(', '))) %}
              {% endif %}
            {% endfor %}
          {% endif %}
          {% set pdwell = p.get('min_dwell_days') %}
          {% if pdwell is not none and (pdwell is not number or pdwell < 0) %}
            {% do errors.append(pwhere ~ ", field `min_dwell_days`: must be a whole number of days >= 0") %}
          {% endif %}
        {% endif %}
      {% endfor %}
    {% endif %}
  {% endfor %}
  {% do return(errors) %}
{% endmacro %}
