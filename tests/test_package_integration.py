"""phasegate installed as a dbt package (integration_tests/) over small seeded sources,
built by real dbt on DuckDB and on Postgres."""

from __future__ import annotations

import re
from datetime import date

from conftest import column_type, columns_of, data_rows, execute, query

EXPECTED_2026_11_20 = {
    "c_active": "active",  # ordered 10 days ago (a duplicated order event counts once)
    "c_anon": "active",  # ordered under an anonymous id linked to the user
    "c_at_risk": "at_risk",  # last order 81 days ago
    "c_lapsed": "lapsed",  # last order 203 days ago
    "c_new": "onboarding",  # signed up 10 days ago, no orders
    "c_prospect": "prospect",  # no orders, signed up long ago
}


def membership(project) -> dict[str, str]:
    return dict(query(project, "select customer_id, phase from phasegate__phase_membership"))


def test_builds_expected_phases_signals_and_quarantine(integration_project):
    p = integration_project
    p.dbt("seed")
    p.dbt("build")

    assert membership(p) == EXPECTED_2026_11_20  # c_future signs up after the as-of date

    signals = {
        r[0]: r[1:]
        for r in query(
            p,
            """
        select customer_id, orders_lifetime, revenue_lifetime, days_since_last_order,
               consent_email, consent_sms, days_since_last_seen
        from phasegate__customer_signals""",
        )
    }
    assert signals["c_active"][0] == 1  # e01 arrives twice
    assert float(signals["c_active"][1]) == 40.0
    assert signals["c_active"][2] == 10
    assert signals["c_active"][3] is False  # email granted, then revoked on 11-01
    assert signals["c_active"][4] is True
    assert signals["c_active"][5] == 2  # page view under its anonymous id on 11-18
    assert signals["c_lapsed"][5] == 203  # an outbound email is not the customer being seen
    assert signals["c_anon"][3] is False  # consent granted only after the as-of date

    reasons = dict(query(p, "select event_id, quarantine_reason from phasegate__quarantined_events"))
    assert reasons == {
        "e09": "unknown_event_type",
        "e10": "missing_identifiers",
        "e11": "occurred_after_received",
        "e12": "unresolved_identity",
    }

    # Each customer's first placement is a transition from nothing, carrying its evidence.
    rows = query(
        p,
        """select customer_id, from_phase, to_phase, signal_values
                       from phasegate__phase_transitions where customer_id = 'c_at_risk'""",
    )
    assert len(rows) == 1 and rows[0][1] is None and rows[0][2] == "at_risk"
    assert '"days_since_last_order":"81"' in rows[0][3]

    phases = query(
        p,
        "select journey, phase, is_default from phasegate__journey_phases order by phase_position",
    )
    assert phases[0] == ("lifecycle", "prospect", True)
    assert [r[1] for r in phases[1:]] == ["onboarding", "active", "at_risk", "lapsed", "win_back"]


# Membership after each evaluation date, applying the documented semantics by hand.
SEQUENCE = [
    ("2026-11-20", EXPECTED_2026_11_20),
    ("2026-12-06", {**EXPECTED_2026_11_20, "c_lapsed": "win_back", "c_future": "onboarding"}),
    # win_back has min_dwell_days 30: still win_back although `active` now matches.
    ("2026-12-10", {**EXPECTED_2026_11_20, "c_lapsed": "win_back", "c_future": "onboarding"}),
    # c_new is 31 days past signup without an order: back to the default phase.
    (
        "2026-12-11",
        {
            **EXPECTED_2026_11_20,
            "c_lapsed": "win_back",
            "c_future": "onboarding",
            "c_new": "prospect",
        },
    ),
    (
        "2027-01-05",
        {
            "c_active": "active",
            "c_anon": "at_risk",
            "c_at_risk": "lapsed",
            "c_lapsed": "active",
            "c_new": "prospect",
            "c_prospect": "prospect",
            "c_future": "prospect",
        },
    ),
]

LATER_EVENTS = "e20,2026-12-05 12:00:00,2026-12-05 12:00:09,c_lapsed,,order,web,55.0,{}\n"


def test_state_machine_history_and_idempotent_reruns(integration_project):
    p = integration_project
    seeds = p.path / "seeds" / "events.csv"
    seeds.write_text(seeds.read_text() + LATER_EVENTS)
    p.dbt("seed")
    for as_of, expected in SEQUENCE:
        p.dbt("build", vars={"phasegate__as_of": as_of})
        assert membership(p) == expected, as_of

    transitions = query(
        p,
        """select customer_id, from_phase, to_phase, transitioned_on
                              from phasegate__phase_transitions where customer_id = 'c_lapsed'
                              order by transitioned_on""",
    )
    assert transitions == [
        ("c_lapsed", None, "lapsed", date(2026, 11, 20)),
        ("c_lapsed", "lapsed", "win_back", date(2026, 12, 6)),
        ("c_lapsed", "win_back", "active", date(2027, 1, 5)),
    ]

    # History: contiguous, non-overlapping intervals with exactly one current per customer.
    bad = query(
        p,
        """
        with h as (
            select customer_id, journey, valid_from, valid_to, is_current,
                   lead(valid_from) over (partition by customer_id, journey order by valid_from) as next_from
            from phasegate__phase_history)
        select * from h
        where (valid_to is null) <> is_current
           or (next_from is not null and valid_to <> next_from)
           or (valid_to is not null and valid_to <= valid_from)""",
    )
    assert bad == []
    current = query(
        p,
        """select customer_id, count(*) from phasegate__phase_history where is_current
                          group by customer_id having count(*) <> 1""",
    )
    assert current == []

    before = sorted(query(p, "select * from phasegate__phase_transitions"))
    # Re-running the last date, or replaying from an earlier one, rebuilds the same history.
    p.dbt("build", vars={"phasegate__as_of": "2027-01-05"})
    assert sorted(query(p, "select * from phasegate__phase_transitions")) == before
    p.dbt(
        "run",
        "--select",
        "int_customer_activity_summarized phasegate__customer_signals phasegate__phase_transitions",
        vars={"phasegate__as_of": "2026-12-06"},
    )
    assert query(p, "select max(transitioned_on) from phasegate__phase_transitions") == [(date(2026, 12, 6),)]
    for as_of, _ in SEQUENCE[2:]:
        p.dbt("build", vars={"phasegate__as_of": as_of})
    assert sorted(query(p, "select * from phasegate__phase_transitions")) == before


def test_incremental_days_with_late_events_match_full_rebuild(integration_project):
    p = integration_project
    p.dbt("seed")
    p.dbt("build", vars={"phasegate__as_of": "2026-11-20"})
    events = p.path / "seeds" / "events.csv"
    events.write_text(
        events.read_text()
        # Events for 11-19 and 11-18 that only arrive on 11-22.
        + "e30,2026-11-19 10:00:00,2026-11-22 07:00:00,c_prospect,,order,web,12.0,{}\n"
        + "e31,2026-11-18 10:00:00,2026-11-22 07:00:00,c_new,,page_view,web,,{}\n"
        # Three weeks late: its day was aggregated long ago, and is recomputed on arrival.
        + "e32,2026-11-01 10:00:00,2026-11-22 07:00:00,c_at_risk,,order,app,30.0,{}\n"
        # A copy of an event stored on 11-10 arriving again: counts once.
        + "e01,2026-11-10 12:00:00,2026-11-22 07:00:00,c_active,a_active,order,web,40.0,{}\n"
        # On 11-18, a day c_active was already active (e03): a session more, no active day more.
        + "e40,2026-11-18 20:00:00,2026-11-21 07:00:00,c_active,,app_open,app,,{}\n"
    )
    # e12 (received 11-04 under an unknown anonymous id, quarantined as unresolved) resolves
    # once this link arrives, far outside the lookback.
    identities = p.path / "seeds" / "identities.csv"
    identities.write_text(
        identities.read_text() + "anonymous_id,a_unknown,user_id,c_prospect,2026-11-21 08:00:00\n"
    )
    consents = p.path / "seeds" / "consents.csv"
    consents.write_text(
        consents.read_text()
        # Landed late with an old timestamp: what 11-20 saw changed, so 11-21 recomputes all.
        + "c_at_risk,sms,granted,2026-11-05 09:00:00\n"
        # Visible from 11-22 only: that run rewrites just this customer.
        + "c_new,sms,granted,2026-11-22 09:00:00\n"
    )
    customers = p.path / "seeds" / "customers.csv"
    customers_before = customers.read_text()
    # Signs up on 11-21: assigned a holdout group and consent rows when it appears.
    customers.write_text(customers_before + "c_late,2026-11-21 08:00:00,late@example.com,,US\n")
    p.dbt("seed")
    for as_of in ("2026-11-21", "2026-11-22"):
        p.dbt("build", vars={"phasegate__as_of": as_of})
    incremental = {
        r: data_rows(p, r)
        for r in (
            "int_customer_days_aggregated",
            "int_events_validated",
            "phasegate__quarantined_events",
            "phasegate__late_events",
            "int_customer_activity_summarized",
            "phasegate__customer_signals",
            "int_event_identity_links_collected",
            "phasegate__customer_consents",
            "phasegate__holdout_assignments",
        )
    }
    days = {(r[0], str(r[1])): r for r in incremental["int_customer_days_aggregated"]}
    assert ("c_prospect", "2026-11-19") in days
    assert ("c_prospect", "2026-11-04") in days  # e12, re-resolved
    assert ("c_at_risk", "2026-11-01") in days  # e32, three weeks late
    assert days[("c_active", "2026-11-10")][2] == 1  # e01 and its two later copies: one event
    quarantined = {r[1] for r in incremental["phasegate__quarantined_events"]}
    assert "e12" not in quarantined and "e10" in quarantined
    # Reported late: more than the 3-day lookback between occurring and arriving (e31, e32).
    late = sorted(r[0] for r in incremental["phasegate__late_events"])
    assert late == [date(2026, 11, 1), date(2026, 11, 18)]
    # Consent rows: id, customer, channel, granted, ...; holdout rows: id, journey, customer, ...
    granted = {(r[1], r[2]) for r in incremental["phasegate__customer_consents"] if r[3]}
    assert {("c_at_risk", "sms"), ("c_new", "sms")} <= granted
    assert "c_late" in {r[2] for r in incremental["phasegate__holdout_assignments"]}
    # 11-21 recomputed every customer (a late change to what 11-20 saw); 11-22 only c_new.
    written = dict(
        query(p, "select customer_id, max(consents_as_of) from phasegate__customer_consents group by 1")
    )
    assert written["c_new"] == date(2026, 11, 22)
    assert written["c_active"] == written["c_at_risk"] == date(2026, 11, 21)

    # Seeds stay: a full refresh of a seed drops it, and on Postgres its dependent views too.
    p.dbt(
        "build",
        "--full-refresh",
        "--exclude",
        "resource_type:seed",
        vars={"phasegate__as_of": "2026-11-22"},
    )
    for relation, rows in incremental.items():
        assert data_rows(p, relation) == rows, relation
    assert membership(p)["c_prospect"] == "active"

    # The activity summary shifted four weeks at once (windows slide past whole days of
    # activity), then taken back to an earlier date, still equals a rebuild. So do consents
    # (c_future signs up and c_anon grants on 12-01, and both go again) and holdouts, with
    # c_late gone from the source.
    customers.write_text(customers_before)
    p.dbt("seed", "--select", "customers")
    for as_of in ("2026-12-20", "2026-11-22"):
        p.dbt("build", vars={"phasegate__as_of": as_of})
        summary = {
            r: data_rows(p, r)
            for r in (
                "int_customer_activity_summarized",
                "phasegate__customer_signals",
                "phasegate__customer_consents",
                "phasegate__holdout_assignments",
            )
        }
        assert ("c_future" in {r[1] for r in summary["phasegate__customer_consents"]}) == (as_of > "2026-12")
        assert "c_late" not in {r[2] for r in summary["phasegate__holdout_assignments"]}
        p.dbt("build", "--full-refresh", "--exclude", "resource_type:seed", vars={"phasegate__as_of": as_of})
        for relation, rows in summary.items():
            assert data_rows(p, relation) == rows, (as_of, relation)

    # A longer lookback recounts every late day: only e32 (21 days late) is still late. Built
    # alone, before daily activity has recounted, the late events are counted directly.
    longer = {"phasegate__as_of": "2026-11-22", "phasegate__lookback_days": 10}
    p.dbt("build", "--select", "phasegate__late_events", vars=longer)
    recounted = data_rows(p, "phasegate__late_events")
    assert [(r[0], r[1], r[2], r[3]) for r in recounted] == [(date(2026, 11, 1), 1, 21, 10)]
    p.dbt("build", "--select", "phasegate__late_events", "--full-refresh", vars=longer)
    assert data_rows(p, "phasegate__late_events") == recounted
    # Daily activity then recounts every day with the new lookback (no day's events changed,
    # so only the recount can rewrite e31's day), and the late events summed from it agree.
    late_day = (
        "select late_events, late_after_days from int_customer_days_aggregated "
        "where customer_id = 'c_new' and activity_date = '2026-11-18'"
    )
    assert query(p, late_day) == [(1, 3)]
    p.dbt("build", "--select", "int_customer_days_aggregated phasegate__late_events", vars=longer)
    assert query(p, late_day) == [(0, 10)]
    assert query(p, "select distinct late_after_days from int_customer_days_aggregated") == [(10,)]
    assert data_rows(p, "phasegate__late_events") == recounted
    days = data_rows(p, "int_customer_days_aggregated")
    p.dbt("build", "--select", "int_customer_days_aggregated", "--full-refresh", vars=longer)
    assert data_rows(p, "int_customer_days_aggregated") == days

    # New holdout settings assign every customer again, and no row of the old ones is left.
    salt = {"phasegate__as_of": "2026-11-22", "phasegate__holdout_salt": "reshuffled"}
    p.dbt("build", "--select", "phasegate__holdout_assignments", vars=salt)
    reshuffled = data_rows(p, "phasegate__holdout_assignments")
    assert len(reshuffled) == len(summary["phasegate__holdout_assignments"])
    assert not set(reshuffled) & set(summary["phasegate__holdout_assignments"])
    p.dbt("build", "--select", "phasegate__holdout_assignments", "--full-refresh", vars=salt)
    assert data_rows(p, "phasegate__holdout_assignments") == reshuffled

    # A replay landing with a received_at far behind the watermark is missed by incremental
    # runs: the build warns with the count, and a full refresh picks it up.
    events.write_text(
        events.read_text() + "e33,2026-11-05 10:00:00,2026-11-05 10:00:01,c_new,,app_open,app,,{}\n"
    )
    p.dbt("seed")
    out = p.dbt("build", vars={"phasegate__as_of": "2026-11-22"}).stdout
    assert re.search(r"WARN 1 phasegate_is_empty_phasegate__unvalidated_events", out), out[-3000:]
    assert query(p, "select unvalidated_events, sample_event_id from phasegate__unvalidated_events") == [
        (1, "e33")
    ]
    assert not query(p, "select * from int_events_validated where event_row_id = 'e33'")
    out = p.dbt(
        "build", "--full-refresh", "--exclude", "resource_type:seed", vars={"phasegate__as_of": "2026-11-22"}
    ).stdout
    assert "phasegate_is_empty_phasegate__unvalidated_events" in out
    assert not re.search(r"WARN \d+ phasegate_is_empty", out)
    assert query(p, "select customer_id from int_events_validated where event_row_id = 'e33'") == [("c_new",)]
    assert not query(p, "select * from phasegate__unvalidated_events")

    # Tables from before batch numbers were epoch milliseconds: 32-bit columns, batch 1. The
    # pre-hooks widen them in place; the events table's first, in an incremental run of its own.
    batch_columns = {
        "int_events_validated": "validated_batch",
        "int_customer_days_aggregated": "events_batch",
        "phasegate__quarantined_events": "validated_batch",
        "int_customer_activity_summarized": "events_batch",
    }
    for relation, column in batch_columns.items():
        execute(p, f"update {relation} set {column} = 1")
        execute(p, f"alter table {relation} alter column {column} type integer")
    assert {column_type(p, r, c) for r, c in batch_columns.items()} == {"integer"}
    p.dbt("run", "--select", "int_events_validated", vars={"phasegate__as_of": "2026-11-22"})
    assert column_type(p, "int_events_validated", "validated_batch") == "bigint"

    # Rebuilding the events table alone (say, after events were deleted at the source) is
    # noticed by the incremental models reading it: its batch numbers keep growing, so every
    # batch left is above those they read. They re-read it and drop what it no longer has.
    events.write_text(
        "".join(
            line for line in events.read_text().splitlines(keepends=True) if line[:4] not in ("e32,", "e10,")
        )
    )
    p.dbt("seed")
    p.dbt(
        "run", "--full-refresh", "--select", "int_events_validated", vars={"phasegate__as_of": "2026-11-22"}
    )
    p.dbt("build", vars={"phasegate__as_of": "2026-11-22"})
    downstream = (
        "int_customer_days_aggregated",
        "phasegate__quarantined_events",
        "int_customer_activity_summarized",
    )
    assert {column_type(p, r, c) for r, c in batch_columns.items()} == {"bigint"}
    after_rebuild = {r: data_rows(p, r) for r in downstream}
    days = {(r[0], str(r[1])) for r in after_rebuild["int_customer_days_aggregated"]}
    assert ("c_at_risk", "2026-11-01") not in days and ("c_prospect", "2026-11-19") in days
    assert "e10" not in {r[1] for r in after_rebuild["phasegate__quarantined_events"]}
    p.dbt(
        "build", "--full-refresh", "--exclude", "resource_type:seed", vars={"phasegate__as_of": "2026-11-22"}
    )
    for relation, rows in after_rebuild.items():
        assert data_rows(p, relation) == rows, relation

    # The uniqueness tests of incremental keys catch a duplicate in a one-batch (full) build,
    # and in the latest batch of an incremental one.
    active_days = "from int_customer_days_aggregated where customer_id = 'c_active'"
    [(days,)] = query(p, f"select count(*) {active_days}")
    execute(p, f"insert into int_customer_days_aggregated select * {active_days}")
    out = p.dbt("test", "--select", "int_customer_days_aggregated", expect_ok=False)
    assert out.returncode != 0, out.stdout[-3000:]
    assert f"FAIL {days} phasegate_unique_combination_int_customer_days" in out.stdout, out.stdout[-3000:]
    e01 = "from int_events_validated where event_row_id = 'e01'"
    [(latest,)] = query(p, "select max(validated_batch) + 1 from int_events_validated")
    execute(p, f"update int_events_validated set validated_batch = {latest} where event_row_id = 'e01'")
    execute(p, f"insert into int_events_validated select * {e01}")  # twice in the latest batch
    # ... and a key of an earlier batch written again by the latest one.
    cols = columns_of(p, "int_events_validated")
    e02 = ", ".join(str(latest) if c == "validated_batch" else c for c in cols)
    execute(
        p,
        f"insert into int_events_validated select {e02} from int_events_validated where event_row_id = 'e02'",
    )
    out = p.dbt("test", "--select", "int_events_validated", expect_ok=False)
    assert out.returncode != 0, out.stdout[-3000:]
    assert "FAIL 2 phasegate_unique_in_latest_batch_int_events" in out.stdout, out.stdout[-3000:]

    # A quarantine table built before it was incremental (no validated_batch) stops the run
    # with the command that rebuilds it, rather than a failed query; that command works.
    execute(p, "alter table phasegate__quarantined_events drop column validated_batch")
    out = p.dbt("run", "--select", "phasegate__quarantined_events", expect_ok=False)
    assert out.returncode != 0, out.stdout[-3000:]
    assert "dbt build --full-refresh --select phasegate__quarantined_events" in out.stdout, out.stdout[-3000:]
    p.dbt("run", "--full-refresh", "--select", "phasegate__quarantined_events")
    assert "validated_batch" in columns_of(p, "phasegate__quarantined_events")


SEGMENT_VARS = {
    "phasegate__using_generic_source": False,
    "phasegate__using_segment": True,
    **{
        f"phasegate__segment_{t}_identifier": f"segment_{t}"
        for t in ("identifies", "tracks", "pages", "screens", "users")
    },
    "phasegate__segment_orders_identifier": "segment_order_completed",
}


def test_segment_warehouse_schema_maps_onto_the_same_shapes(integration_project):
    p = integration_project
    p.dbt("seed")
    vars = {**SEGMENT_VARS, "phasegate__segment_schema": p.vars["phasegate__source_schema"]}
    p.dbt("build", vars=vars)

    assert membership(p) == {"u1": "active", "u2": "onboarding"}
    signals = {
        r[0]: r[1:]
        for r in query(
            p,
            """
        select customer_id, orders_lifetime, revenue_lifetime, days_since_last_seen, carts_last_7d
        from phasegate__customer_signals""",
        )
    }
    assert signals["u1"][0] == 1 and float(signals["u1"][1]) == 42.0
    assert signals["u1"][3] == 1  # the anonymous Product Added, stitched through identifies
    assert signals["u2"][2] == 3  # Application Opened on 11-17 (screens on 11-14 too)
    reasons = dict(query(p, "select event_id, quarantine_reason from phasegate__quarantined_events"))
    assert reasons == {"t3": "unknown_event_type"}
    owner = dict(
        query(
            p,
            """select identifier_value, customer_id from int_identifiers_stitched
                             where identifier_type in ('email', 'phone', 'device_id')""",
        )
    )
    assert owner == {"u1@example.com": "u1", "+14155550111": "u1", "D-1": "u1", "u2@example.com": "u2"}
