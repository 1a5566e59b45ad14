"""Governance marts built by the package: the suppression list resolved through the identity
map, consent per channel, and salted hash holdouts — on DuckDB and Postgres."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from conftest import END, REPO, drop_pg_schemas, query, warehouse_env
from phasegate import api
from phasegate.config import load_config
from phasegate.destinations import REGISTRY
from phasegate.warehouse import connect, qualified

SALT = "phasegate-holdout-v1"
DEFAULT_LIFECYCLE = {
    "default_phase": "prospect",
    "min_dwell_days": 3,
    "phases": [
        {"name": "onboarding", "when": "days_since_signup <= 30 and orders_lifetime = 0"},
        {"name": "active", "when": "days_since_last_order <= 60"},
        {
            "name": "at_risk",
            "when": "days_since_last_order between 61 and 120",
            "from": ["active", "win_back"],
        },
        {"name": "lapsed", "when": "days_since_last_order > 120"},
        {"name": "win_back", "when": "orders_last_30d > 0", "from": ["lapsed"], "min_dwell_days": 30},
    ],
}


def bucket(text: str) -> int:
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) % 10_000


def test_suppressions_consents_and_holdouts(integration_project):
    p = integration_project
    p.dbt("seed")
    vars_ = {
        "phasegate__global_holdout_pct": 30,
        # The default journey (the package's unit tests assert its rules) plus the new keys.
        "phasegate__journeys": {
            "lifecycle": {**DEFAULT_LIFECYCLE, "holdout_pct": 40, "priority": 2},
            # A journey on a model-derived signal (P(alive) from a customer-base model).
            "churn_risk": {
                "default_phase": "unscored",
                "phases": [
                    {"name": "likely_churned", "when": "p_alive < 0.2"},
                    {"name": "likely_alive", "when": "p_alive >= 0.2"},
                ],
            },
        },
        "phasegate__signal_relations": [
            {
                "model": "customer_scores",
                "key": "customer_id",
                "as_of_column": "scored_on",
                "columns": ["p_alive"],
            }
        ],
    }
    p.dbt("build", vars=vars_)

    # The score as it was on the as-of date (c_lapsed's later re-score is not seen yet).
    p_alive = dict(query(p, "select customer_id, p_alive from phasegate__customer_signals"))
    assert (p_alive["c_active"], p_alive["c_lapsed"], p_alive["c_new"]) == (0.91, 0.08, None)
    churn = dict(
        query(p, "select customer_id, phase from phasegate__phase_membership where journey = 'churn_risk'")
    )
    assert churn["c_lapsed"] == "likely_churned" and churn["c_active"] == "likely_alive"
    assert churn["c_new"] == "unscored"

    suppressed = {
        r[0]: r[1]
        for r in query(p, "select customer_id, is_deletion_requested from phasegate__suppressed_customers")
    }
    # By id; by an unnormalised email (a deletion); by a phone written nationally with '+1'.
    assert suppressed == {"c_prospect": False, "c_lapsed": True, "c_at_risk": False}
    unresolved = query(p, "select identifier_value from int_suppressions_resolved where customer_id is null")
    assert unresolved == [("nobody@example.org",)]

    consents = {
        (r[0], r[1]): (r[2], r[3])
        for r in query(
            p, "select customer_id, channel, is_granted, consent_status from phasegate__customer_consents"
        )
    }
    assert consents[("c_active", "email")] == (False, "revoked")
    assert consents[("c_active", "sms")] == (True, "granted")
    assert consents[("c_new", "push")] == (False, "none")
    customers = {
        r[0] for r in query(p, "select customer_id from int_customers_unioned where signup_at < '2026-11-21'")
    }
    assert {c for c, _ in consents} == customers and len(consents) == 4 * len(customers)

    rows = query(
        p,
        "select customer_id, global_bucket, journey_bucket, is_global_holdout, is_journey_holdout, "
        "holdout_group from phasegate__holdout_assignments where journey = 'lifecycle'",
    )
    assert rows
    for cid, gb, jb, is_global, is_journey, group in rows:
        # The same salted md5 bucket on every warehouse (and in Python).
        assert gb == bucket(f"{SALT}|global|{cid}") and jb == bucket(f"{SALT}|lifecycle|{cid}")
        assert is_global == (gb < 3000) and is_journey == (jb < 4000)
        assert group == ("global_holdout" if is_global else "journey_holdout" if is_journey else "treatment")
    priority = query(
        p,
        "select distinct journey, journey_priority, journey_holdout_pct "
        "from phasegate__journey_phases order by 1",
    )
    assert [(j, int(a), float(b)) for j, a, b in priority] == [
        ("churn_risk", 100, 0.0),
        ("lifecycle", 2, 40.0),
    ]


def test_holdout_buckets_are_uniform_enough_for_the_configured_share():
    """The bucket function the SQL implements (asserted equal above) holds out close to the
    configured share at scale, and raising the share only adds customers."""
    ids = [f"cust_{i:07d}" for i in range(200_000)]
    buckets = [bucket(f"{SALT}|global|{c}") for c in ids]
    for pct in (1, 5, 10, 50):
        share = sum(b < pct * 100 for b in buckets) / len(ids)
        assert abs(share - pct / 100) < 0.005, (pct, share)
    five = {c for c, b in zip(ids, buckets, strict=True) if b < 500}
    ten = {c for c, b in zip(ids, buckets, strict=True) if b < 1000}
    assert five < ten


# --- activation: what the governance marts keep from every destination -------------------


def sql(cfg, statement: str, params=()) -> list[tuple]:
    """Run one statement on the config's warehouse; {m} is the models schema, {o} the ops
    schema, {r} the source schema."""
    wh = connect(Path(cfg.project_dir), cfg.target)
    try:
        text = statement.format(
            m=qualified(wh.schema, "x")[:-4], o=f'"{cfg.ops_schema}"', r=f'"{cfg.source_schema}"'
        )
        if text.lstrip().lower().startswith(("select", "with")):
            return wh.query(text, params)
        wh.execute(text, params)
        wh.commit()
        return []
    finally:
        wh.close()


def outbox(directory: Path) -> list[dict]:
    return [
        json.loads(line) for f in sorted(directory.rglob("*.jsonl")) for line in f.read_text().splitlines()
    ]


@pytest.fixture
def governed(tmp_path, warehouse_kind, monkeypatch):
    env = warehouse_env(warehouse_kind, tmp_path)
    env["DBT_TARGET_PATH"] = str(tmp_path / "dbt_target")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    suffix = uuid.uuid4().hex[:8]
    raw = {
        "version": 1,
        "project_dir": str(REPO),
        "source_schema": f"raw_{suffix}",
        "ops_schema": f"ops_{suffix}",
        "dbt_vars": {"phasegate__global_holdout_pct": 10},
        "syncs": [
            {
                "name": "email_tool",
                "destination": {"type": "file", "path": str(tmp_path / "email_tool")},
                "consent_channel": "email",
                "identifiers": ["email"],
                "send_initial_entries": True,
            },
            {"name": "warehouse_feed", "destination": {"type": "file", "path": str(tmp_path / "feed")}},
        ],
    }
    path = tmp_path / "phasegate.yml"
    path.write_text(yaml.safe_dump(raw))
    yield load_config(path), tmp_path
    if warehouse_kind == "postgres":
        drop_pg_schemas(env, env["PHASEGATE_PG_SCHEMA"], raw["source_schema"], raw["ops_schema"])


def test_suppression_holdouts_consent_and_deletion_gate_every_send(governed, generated):
    cfg, tmp = governed
    api.load_sources(cfg, generated)
    api.backfill(cfg, date(2026, 11, 14), END)

    members = {r[0] for r in sql(cfg, "select customer_id from {m}.phasegate__phase_membership")}
    suppressed = {r[0] for r in sql(cfg, "select customer_id from {m}.phasegate__suppressed_customers")}
    held_out = {
        r[0] for r in sql(cfg, "select customer_id from {m}.phasegate__holdout_assignments where is_held_out")
    }
    consented = {
        r[0]
        for r in sql(
            cfg,
            "select customer_id from {m}.phasegate__customer_consents where channel = 'email' and is_granted",
        )
    }
    truth = json.loads((generated / "truth.json").read_text())
    assert truth["rows"]["suppressions"] > 0 and suppressed and suppressed <= members
    # The configured 10% holdout, within four standard deviations.
    assert abs(len(held_out) / len(members) - 0.10) < 4 * (0.1 * 0.9 / len(members)) ** 0.5

    report = api.activate(cfg, progress=False)
    email, feed = report.syncs
    expected_email = (members - suppressed - held_out) & consented
    sent_email = {r["key"] for r in outbox(tmp / "email_tool") if r["kind"] == "upsert"}
    assert sent_email == expected_email
    assert email.held_back["suppressed"] == len(suppressed)
    assert email.held_back["held_out"] == len(held_out - suppressed)
    assert email.held_back["no_consent"] == len(members - suppressed - held_out - consented)
    sent_feed = {r["key"] for r in outbox(tmp / "feed") if r["kind"] == "upsert"}
    assert sent_feed == members - suppressed - held_out  # a feed that messages nobody needs no consent
    events = [r for r in outbox(tmp / "email_tool") if r["kind"] == "event"]
    assert events and {r["key"] for r in events} <= expected_email

    # The run's counts are in the ledger, for BI and the audit.
    ((held_json,),) = sql(cfg, "select held_back from {o}.sync_runs where run_id = ?", (email.run_id,))
    assert json.loads(held_json)["no_consent"] == email.held_back["no_consent"]

    # Consent revoked for one synced customer: the next run removes them from that destination.
    revoked = sorted(sent_email)[0]
    sql(
        cfg,
        "insert into {r}.consents values (?, 'email', 'revoked', ?)",
        (revoked, datetime(2026, 11, 20, 9)),
    )
    # A deletion request for another: deleted at the destination, logged, never sent again.
    erased = sorted(sent_email)[1]
    sql(
        cfg,
        "insert into {r}.suppressions values ('customer_id', ?, 'delete', 'gdpr_erasure', ?)",
        (erased, datetime(2026, 11, 20, 10)),
    )
    api.build(cfg, END)
    before = {r["record_id"] for r in outbox(tmp / "email_tool")}
    dry = api.activate(cfg, dry_run=True, progress=False).syncs[0]
    assert (dry.upserts, dry.removes) == (0, 2) and len(outbox(tmp / "email_tool")) == len(before)
    second = api.activate(cfg, progress=False).syncs[0]
    # Batch files are named by content, so new records are told apart by id.
    new = [r for r in outbox(tmp / "email_tool") if r["record_id"] not in before]
    gone_kind = "delete" if REGISTRY["file"].capabilities.supports_delete else "remove"
    assert sorted((r["key"], r["kind"]) for r in new) == sorted([(revoked, "remove"), (erased, gone_kind)])
    assert second.held_back["no_consent"] == email.held_back["no_consent"] + 1
    assert second.deleted == (1 if gone_kind == "delete" else 0)
    log = sql(cfg, "select sync_name, record_key, method from {o}.deletion_log")
    assert ("email_tool", erased, "deleted" if gone_kind == "delete" else "attributes_cleared") in log
    assert ("warehouse_feed", erased, "deleted" if gone_kind == "delete" else "attributes_cleared") in log
    third = api.activate(cfg, progress=False).syncs[0]
    assert (third.upserts, third.removes, third.events) == (0, 0, 0)


def test_frequency_caps_share_one_budget_across_journeys_by_priority(tmp_path, monkeypatch, generated):
    env = warehouse_env("duckdb", tmp_path)
    env["DBT_TARGET_PATH"] = str(tmp_path / "dbt_target")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    journeys = {
        "lifecycle": DEFAULT_LIFECYCLE,
        # Flips whenever a customer is seen or not: many changes competing with lifecycle's.
        "engagement": {
            "default_phase": "dormant",
            "priority": 1,
            "phases": [{"name": "engaged", "when": "days_since_last_seen <= 2"}],
        },
    }
    path = tmp_path / "phasegate.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "project_dir": str(REPO),
                "source_schema": "raw",
                "dbt_vars": {"phasegate__journeys": journeys},
                "frequency_caps": {"per_day": 1},
                "checks": {"max_changed_share": 1.0},
                "syncs": [
                    {"name": "push", "destination": {"type": "file", "path": str(tmp_path / "push")}},
                    {"name": "hook", "destination": {"type": "file", "path": str(tmp_path / "hook")}},
                ],
            }
        )
    )
    cfg = load_config(path)
    api.load_sources(cfg, generated)
    api.backfill(cfg, date(2026, 11, 14), END)
    report = api.activate(cfg, progress=False)

    decisions = sql(
        cfg,
        "select transition_id, customer_id, journey, decision, journey_priority, decided_on "
        "from {o}.activation_decisions",
    )
    by_customer: dict[str, list[tuple]] = {}
    for row in decisions:
        by_customer.setdefault(row[1], []).append(row)
    both = [rows for rows in by_customer.values() if {r[2] for r in rows} == {"lifecycle", "engagement"}]
    assert both, "the data must make journeys compete for some customers"
    for rows in by_customer.values():
        activated = [r for r in rows if r[3] == "activated"]
        assert len(activated) <= 1  # one action per customer per day, whatever the journey
        capped = [r for r in rows if r[3] == "capped"]
        if capped:
            assert activated and activated[0][4] <= min(r[4] for r in capped)  # priority decides
    for rows in both:
        assert [r[2] for r in rows if r[3] == "activated"] == ["engagement"]

    # Every sync follows the same decisions: events only for activated changes.
    activated_ids = {r[0] for r in decisions if r[3] == "activated"}
    capped_ids = {r[0] for r in decisions if r[3] == "capped"}
    assert capped_ids
    for summary, folder in zip(report.syncs, ("push", "hook"), strict=True):
        sent = {r["transition_id"] for r in outbox(tmp_path / folder) if r["kind"] == "event"}
        assert sent == activated_ids
        assert summary.held_back["capped_events"] == 2 * len(capped_ids)  # entered + exited

    # Rerunning decides nothing new and sends nothing new.
    again = api.activate(cfg, progress=False)
    assert all(s.events == 0 and s.upserts == 0 for s in again.syncs)
    assert len(sql(cfg, "select * from {o}.activation_decisions")) == len(decisions)
