"""Identity stitching on adversarial graphs, and configuration validation at on-run-start,
through real dbt builds of the integration project."""

from __future__ import annotations

import pytest

from conftest import columns_of, data_rows, execute, make_integration_project, query

# (type_a, value_a, type_b, value_b): each scenario's links, on top of the base seeds.
ADVERSARIAL_LINKS = [
    # chain: c_active -> anon -> device -> anon2 (3 hops)
    ("anonymous_id", "a_chain1", "user_id", "c_active"),
    ("device_id", "d_chain", "anonymous_id", "a_chain1"),
    ("device_id", "d_chain", "anonymous_id", "a_chain2"),
    # cycle between c_lapsed's identifiers: must terminate and assign once
    ("anonymous_id", "a_cyc1", "user_id", "c_lapsed"),
    ("anonymous_id", "a_cyc1", "device_id", "d_cyc"),
    ("anonymous_id", "a_cyc2", "device_id", "d_cyc"),
    ("anonymous_id", "a_cyc2", "user_id", "c_lapsed"),
    # an anonymous id seen with two customers: never merges them
    ("anonymous_id", "a_shared", "user_id", "c_new"),
    ("anonymous_id", "a_shared", "user_id", "c_prospect"),
    # junk identifiers: blocklisted and malformed values link nobody
    ("email", " TEST@test.com ", "user_id", "c_new"),
    ("email", "test@test.com", "user_id", "c_prospect"),
    ("phone", "12", "user_id", "c_new"),
]
# star: one device linked to 30 anonymous ids of which two belong to different customers
STAR = [("device_id", "d_star", "anonymous_id", f"a_star{i}") for i in range(30)] + [
    ("anonymous_id", "a_star0", "user_id", "c_at_risk"),
    ("anonymous_id", "a_star1", "user_id", "c_anon"),
]


def _add_links(project, links):
    path = project.path / "seeds" / "identities.csv"
    rows = "".join(f"{a},{va},{b},{vb},2026-06-01 10:00:00\n" for a, va, b, vb in links)
    path.write_text(path.read_text() + rows)


def test_identity_stitching_resists_over_merging(integration_project):
    p = integration_project
    _add_links(p, ADVERSARIAL_LINKS + STAR)
    p.dbt("seed")
    p.dbt("build", "--select", "+phasegate__identity_guard_report")

    owner = {
        (t, v): c
        for t, v, c in query(
            p,
            """
        select identifier_type, identifier_value, customer_id from int_identifiers_stitched
        where within_limit""",
        )
    }
    assert owner[("device_id", "d_chain")] == "c_active"
    assert owner[("anonymous_id", "a_chain2")] == "c_active"  # 3 hops, within the default 4
    assert owner[("anonymous_id", "a_cyc1")] == owner[("anonymous_id", "a_cyc2")] == "c_lapsed"
    assert owner[("device_id", "d_cyc")] == "c_lapsed"
    # Each customer is still itself: no user_id maps to another customer.
    users = [(v, c) for (t, v), c in owner.items() if t == "user_id"]
    assert all(v == c for v, c in users) and len(users) == 7
    # The shared anonymous id goes to exactly one of them (most recent link, then lowest id).
    assert owner[("anonymous_id", "a_shared")] in {"c_new", "c_prospect"}
    # The star's hub joins nobody; its spokes stay with their own customers or nobody.
    assert ("device_id", "d_star") not in owner
    assert owner[("anonymous_id", "a_star0")] == "c_at_risk"
    assert owner[("anonymous_id", "a_star1")] == "c_anon"
    assert ("anonymous_id", "a_star5") not in owner
    assert ("email", "test@test.com") not in owner
    # Phones are normalised to E.164 with the customer's country.
    assert owner[("phone", "+442071838750")] == "c_lapsed"

    guards = {
        (t, v, g)
        for t, v, g in query(
            p,
            """
        select identifier_type, identifier_value, guard from phasegate__identity_guard_report""",
        )
    }
    assert ("device_id", "d_star", "hub") in guards
    assert ("email", "test@test.com", "blocklisted") in guards
    assert ("phone", "12", "invalid_format") in guards
    assert ("anonymous_id", "a_shared", "shared_by_customers") in guards


def test_identity_limits_are_configurable(integration_project):
    p = integration_project
    _add_links(p, ADVERSARIAL_LINKS)
    p.dbt("seed")
    p.dbt(
        "build",
        "--select",
        "+phasegate__identity_guard_report",
        vars={"phasegate__identity_max_hops": 2, "phasegate__identity_max_identifiers_per_customer": 3},
    )
    rows = query(
        p,
        """select identifier_type, identifier_value, within_limit from int_identifiers_stitched
                       where customer_id = 'c_active'""",
    )
    found = {(t, v) for t, v, _ in rows}
    assert ("anonymous_id", "a_chain2") not in found  # 3 hops away, beyond max_hops 2
    assert sum(1 for *_, ok in rows if ok) == 3
    over = query(
        p,
        """select count(*) from phasegate__identity_guard_report
                       where guard = 'over_customer_limit'""",
    )
    assert over[0][0] >= 1


IDENTITY_MODELS = (
    "int_identity_edges_normalized",
    "int_identifiers_stitched",
    "phasegate__identity_guard_report",
)


def _identity_state(project):
    return {r: data_rows(project, r) for r in IDENTITY_MODELS}


def _assert_identity_matches_rebuild(project, step, vars=None):
    """The identity models after an incremental run equal a rebuild from scratch (with the
    same vars), and every stored event without a user_id has the customer its anonymous id
    maps to; the incremental tables are then put back, so the next step builds on them."""
    stale = query(
        project,
        "select v.event_row_id, v.customer_id, m.customer_id from int_events_validated as v "
        "left join int_identifiers_stitched as m on m.identifier_type = 'anonymous_id' "
        "and m.identifier_value = v.anonymous_id and m.within_limit "
        "where v.user_id is null and coalesce(v.customer_id, '') <> coalesce(m.customer_id, '')",
    )
    assert stale == [], (step, stale)
    incremental = _identity_state(project)
    for r in IDENTITY_MODELS:
        execute(project, f"create table {r}__kept as select * from {r}")
    project.dbt("run", "--full-refresh", "--select", *IDENTITY_MODELS, vars=vars)
    rebuilt = _identity_state(project)
    for r in IDENTITY_MODELS:
        assert incremental[r] == rebuilt[r], (step, r)
        execute(project, f"delete from {r}")
        # By name: a table upgraded in place has its columns in another order than a rebuild.
        columns = ", ".join(columns_of(project, f"{r}__kept"))
        execute(project, f"insert into {r} ({columns}) select {columns} from {r}__kept")
        execute(project, f"drop table {r}__kept")


EDGES = "int_identity_edges_normalized"
MAP = "int_identifiers_stitched"


GUARD = "phasegate__identity_guard_report"


def _rebuilt_batches(project):
    """The run that last wrote each identity model (each is updated where something changed,
    so its rows can carry several)."""
    return {r: query(project, f"select max(rebuilt_batch) from {r}")[0][0] for r in IDENTITY_MODELS}


def _tombstones(project):
    """Identifiers that stopped mapping, kept in the map until the guard report has read them."""
    return query(project, f"select identifier_type, identifier_value from {MAP} where customer_id is null")


def _edges_written_last(project):
    """The edge rows the last run that changed edges wrote."""
    return query(
        project,
        f"select raw_a, raw_b from {EDGES} where rebuilt_batch = (select max(rebuilt_batch) from {EDGES})",
    )


def _owner(project, identifier_type, identifier_value):
    rows = query(
        project,
        "select customer_id from int_identifiers_stitched where within_limit "
        f"and identifier_type = '{identifier_type}' and identifier_value = '{identifier_value}'",
    )
    return rows[0][0] if rows else None


def _event(project, event_id):
    return query(
        project,
        f"select customer_id, quarantine_reason from int_events_validated where event_row_id = '{event_id}'",
    )[0]


def test_identity_map_built_incrementally_matches_a_rebuild(integration_project):
    """Links added, re-observed and removed, a hub appearing and going, a customer leaving
    and coming back, a setting changed: after each incremental build the identity models
    equal a rebuild, and the events an identifier resolved follow it. A run that changes
    nothing they read leaves them as they were, without rewriting them."""
    p = integration_project
    identities = p.path / "seeds" / "identities.csv"
    customers = p.path / "seeds" / "customers.csv"
    events = p.path / "seeds" / "events.csv"
    base_identities, base_customers = identities.read_text(), customers.read_text()
    # e_chain resolves only while the chain c_active -> a_chain1 -> d_chain -> a_chain2 holds;
    # e_later (received weeks before the last events, outside the lookback) once a_later is linked.
    events.write_text(
        events.read_text()
        + "e_chain,2026-11-15 10:00:00,2026-11-15 10:00:01,,a_chain2,page_view,web,,{}\n"
        + "e_later,2026-10-01 10:00:00,2026-10-01 10:00:01,,a_later,page_view,web,,{}\n"
    )
    later = [("anonymous_id", "a_later", "user_id", "c_active")]

    def links(*groups, shared_observed="2026-06-01 10:00:00"):
        rows = []
        for group in groups:
            for a, va, b, vb in group:
                when = shared_observed if (va, vb) == ("a_shared", "c_prospect") else "2026-06-01 10:00:00"
                rows.append(f"{a},{va},{b},{vb},{when}\n")
        identities.write_text(base_identities + "".join(rows))

    def spokes(n):
        return [("device_id", "d_star", "anonymous_id", f"a_star{i}") for i in range(n)] + STAR[30:]

    def build(vars=None):
        p.dbt("seed")
        p.dbt("build", vars=vars)

    p.dbt("seed")
    p.dbt("build")
    assert _event(p, "e_chain") == (None, "unresolved_identity")
    assert _event(p, "e_later") == (None, "unresolved_identity")

    # Listed twice: the same link is two rows, as in a rebuild.
    links(ADVERSARIAL_LINKS, spokes(20), later, later)
    build()
    assert _owner(p, "anonymous_id", "a_chain2") == "c_active"
    assert _owner(p, "device_id", "d_star") is not None  # 20 links: not a hub yet
    assert _event(p, "e_chain") == ("c_active", None)
    assert _event(p, "e_later") == ("c_active", None)
    # Only the added links were normalised and written; the stored ones were left alone.
    written = _edges_written_last(p)
    assert len(written) == len(ADVERSARIAL_LINKS + spokes(20) + later + later), written
    assert written.count(("a_later", "c_active")) == 2, written
    # The map was updated around the new links: customers they do not reach kept their rows.
    map_batches = query(p, f"select distinct rebuilt_batch from {MAP}")
    assert len(map_batches) > 1, map_batches
    _assert_identity_matches_rebuild(p, "links added")

    # New events that carry no identity link: the identity models are not rewritten.
    before = _rebuilt_batches(p)
    events.write_text(
        events.read_text() + "e_plain,2026-11-18 09:00:00,2026-11-18 09:00:01,c_active,,page_view,web,,{}\n"
    )
    build()
    assert _event(p, "e_plain") == ("c_active", None)
    assert _rebuilt_batches(p) == before
    _assert_identity_matches_rebuild(p, "no identity change")

    # A setting is an input too: blocklisting the chain's first anonymous id cuts it.
    blocklist = {"phasegate__identity_blocklist": ["test@test.com", "a_chain1"]}
    build(vars=blocklist)
    after = _rebuilt_batches(p)
    assert all(after[r] > before[r] for r in IDENTITY_MODELS), (before, after)
    # The blocklist is part of every edge's key: every row was rewritten.
    assert query(p, f"select count(distinct rebuilt_batch) from {EDGES}") == [(1,)]
    assert _owner(p, "anonymous_id", "a_chain2") is None
    assert _event(p, "e_chain") == (None, "unresolved_identity")
    _assert_identity_matches_rebuild(p, "blocklist changed", vars=blocklist)

    links(ADVERSARIAL_LINKS, spokes(30))
    build()
    assert _owner(p, "device_id", "d_star") is None  # 30 links: a hub, links nobody
    assert _owner(p, "anonymous_id", "a_star5") is None
    assert query(p, f"select guard from {GUARD} where identifier_value = 'd_star'") == [("hub",)]
    _assert_identity_matches_rebuild(p, "hub appeared")

    # The chain's middle link goes; the shared anonymous id is seen with c_prospect later.
    chain_cut = [
        link for link in ADVERSARIAL_LINKS if link[:2] != ("device_id", "d_chain") or link[3] != "a_chain1"
    ]

    def guard_batch(value):
        return query(p, f"select guard, rebuilt_batch from {GUARD} where identifier_value = '{value}'")

    hub_before, shared_before = guard_batch("d_star"), guard_batch("a_shared")
    links(chain_cut, spokes(30), shared_observed="2026-09-01 10:00:00")
    build()
    assert _owner(p, "anonymous_id", "a_chain2") is None
    assert _owner(p, "anonymous_id", "a_shared") == "c_prospect"
    assert _event(p, "e_chain") == (None, "unresolved_identity")
    # The guard report was updated around the changed links: the re-observed link's shared
    # identifier was recomputed, the hub, whose links did not change, kept its row.
    assert guard_batch("d_star") == hub_before
    [(guard, batch)] = guard_batch("a_shared")
    assert guard == "shared_by_customers" and batch > shared_before[0][1], (shared_before, batch)
    _assert_identity_matches_rebuild(p, "link removed, link re-observed")

    # A customer leaves: its anonymous id no longer maps, and its event is unresolved. The map
    # alone first: what stopped mapping stays as a tombstone until the guard report reads it.
    customers.write_text(
        "".join(line + "\n" for line in base_customers.splitlines() if not line.startswith("c_anon,"))
    )
    links(chain_cut, spokes(20), shared_observed="2026-09-01 10:00:00")
    p.dbt("seed")
    p.dbt("run", "--select", "+int_identifiers_stitched")
    assert ("anonymous_id", "a_anon") in _tombstones(p)
    assert _owner(p, "anonymous_id", "a_anon") is None
    build()
    assert _tombstones(p) == []
    assert _owner(p, "user_id", "c_anon") is None
    assert _owner(p, "anonymous_id", "a_anon") is None
    assert _owner(p, "device_id", "d_star") is not None  # back under the hub limit
    assert _event(p, "e08") == (None, "unresolved_identity")
    _assert_identity_matches_rebuild(p, "customer removed, hub gone")

    customers.write_text(base_customers)
    build()
    assert _owner(p, "anonymous_id", "a_anon") == "c_anon"
    assert _event(p, "e08") == ("c_anon", None)
    _assert_identity_matches_rebuild(p, "customer back")

    # Everything downstream of the map equals a full rebuild too, the activity summary
    # included: events that moved between customers recompute theirs from all their days.
    downstream = (
        "int_events_validated",
        "phasegate__quarantined_events",
        "int_customer_days_aggregated",
        "int_customer_activity_summarized",
        "phasegate__customer_signals",
    )
    incremental = {r: data_rows(p, r) for r in downstream}
    p.dbt("build", "--full-refresh", "--exclude", "resource_type:seed")
    for r in downstream:
        assert data_rows(p, r) == incremental[r], r


def test_identity_tables_built_by_an_earlier_version_are_rebuilt(integration_project):
    """Stored tables from before the diffs: edges without input_key (a fingerprint column
    instead), a map rebuilt whole (a fingerprint, none of the incremental map's bookkeeping),
    validated events that recorded the map's version as text, daily activity without its
    late-event counts. The next incremental run rebuilds edges and the map rather than
    diffing rows it cannot key, re-resolves the stored events, recounts every day, and then
    everything equals a rebuild."""
    p = integration_project
    p.dbt("seed")
    p.dbt("build")
    links = len(query(p, f"select * from {EDGES}"))
    execute(p, f"alter table {EDGES} drop column input_key")
    execute(p, f"alter table {EDGES} add column inputs_fingerprint varchar")
    for column in ("observed_at", "edges_read", "stitch_settings", "customer_changed_batch"):
        execute(p, f"alter table {MAP} drop column {column}")
    execute(p, f"alter table {MAP} add column inputs_fingerprint varchar")
    for column in ("edges_read", "map_read", "guard_settings"):
        execute(p, f"alter table {GUARD} drop column {column}")
    execute(p, f"alter table {GUARD} add column inputs_fingerprint varchar")
    for column in ("resolved_map_batch", "resolved_map_rows"):
        execute(p, f"alter table int_events_validated drop column {column}")
    execute(p, "alter table int_events_validated add column resolved_map_version varchar")
    for column in ("late_events", "late_after_days"):
        execute(p, f"alter table int_customer_days_aggregated drop column {column}")
    days = len(query(p, "select * from int_customer_days_aggregated"))
    p.dbt("build")
    columns = columns_of(p, EDGES)
    assert "input_key" in columns and "inputs_fingerprint" not in columns, columns
    assert len(query(p, f"select * from {EDGES} where input_key is not null")) == links
    columns = columns_of(p, MAP)
    assert {"observed_at", "edges_read", "stitch_settings"} <= set(columns), columns
    assert "inputs_fingerprint" not in columns, columns
    assert query(p, f"select count(*) from {MAP} where observed_at is null or edges_read is null") == [(0,)]
    columns = columns_of(p, GUARD)
    assert {"edges_read", "map_read", "guard_settings"} <= set(columns), columns
    assert "inputs_fingerprint" not in columns, columns
    columns = columns_of(p, "int_events_validated")
    assert {"resolved_map_batch", "resolved_map_rows"} <= set(columns), columns
    assert "resolved_map_version" not in columns, columns
    # Daily activity, without the late-event columns, recounted every day to fill them.
    recounted = query(p, "select count(*) from int_customer_days_aggregated where late_after_days = 3")
    assert recounted == [(days,)]
    _assert_identity_matches_rebuild(p, "upgraded")
    upgraded_tables = ("int_events_validated", "int_customer_days_aggregated")
    upgraded = {r: data_rows(p, r, by_name=True) for r in upgraded_tables}
    p.dbt("build", "--full-refresh", "--exclude", "resource_type:seed")
    for relation, rows in upgraded.items():
        assert data_rows(p, relation, by_name=True) == rows, relation


BAD_CONFIGS = [
    (
        {
            "phasegate__journeys": {
                "lifecycle": {
                    "default_phase": "prospect",
                    "phases": [{"name": "active", "when": "days_since_last_ordr <= 60"}],
                }
            }
        },
        ["journey `lifecycle`, phase `active`, field `when`", "unknown column `days_since_last_ordr`"],
    ),
    (
        {
            "phasegate__journeys": {
                "lifecycle": {
                    "default_phase": "prospect",
                    "phases": [
                        {"name": "active", "when": "orders_lifetime > 0"},
                        {"name": "at_risk", "when": "orders_lifetime > 0", "from": ["actve"]},
                    ],
                }
            }
        },
        ["phase `at_risk`, field `from`: unknown phase `actve`"],
    ),
    (
        {
            "phasegate__journeys": {
                "lifecycle": {
                    "default_phase": "prospect",
                    "phases": [
                        {"name": "active", "when": "orders_lifetime > 0"},
                        {"name": "active", "when": "orders_lifetime > 1"},
                    ],
                }
            }
        },
        ["phase `active`: duplicate phase name"],
    ),
    (
        {
            "phasegate__journeys": {
                "Life Cycle": {
                    "default_phase": "prospect",
                    "phases": [{"name": "active", "when": "orders_lifetime > 0; drop table customers"}],
                }
            }
        },
        ["journey `Life Cycle`: name is not safe", "contains `;`"],
    ),
    (
        {"phasegate__signals": [{"name": "x_7d", "kind": "sum", "column": "nonexistent_events", "days": 7}]},
        ["signal `x_7d`, field `column`: unknown daily column `nonexistent_events`"],
    ),
]


@pytest.mark.parametrize(("bad_vars", "messages"), BAD_CONFIGS)
def test_invalid_configuration_fails_before_building_and_says_what_to_fix(tmp_path, bad_vars, messages):
    p = make_integration_project(tmp_path, "duckdb")
    proc = p.dbt("run", "--select", "stg_phasegate__customers", vars=bad_vars, expect_ok=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "phasegate configuration is invalid" in output
    for m in messages:
        assert m in output, output[-3000:]


def test_missing_suppressions_table_fails_at_start_with_the_fix(tmp_path):
    p = make_integration_project(tmp_path, "duckdb")
    p.dbt("seed")
    absent = {"phasegate__suppressions_identifier": "no_such_suppressions"}
    proc = p.dbt("run", "--select", "stg_phasegate__customers", vars=absent, expect_ok=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "suppressions table" in output and "no_such_suppressions does not exist" in output, output[-3000:]
    assert "phasegate__using_suppressions: false" in output
    assert query(
        p, "select count(*) from information_schema.tables where table_name = 'stg_phasegate__customers'"
    ) == [(0,)]
    # The fix it names works: the optional table switched off, the build runs.
    p.dbt(
        "run", "--select", "stg_phasegate__customers", vars={**absent, "phasegate__using_suppressions": False}
    )
    assert query(p, "select count(*) from stg_phasegate__customers")[0][0] > 0
