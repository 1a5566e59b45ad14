"""Activation ledgers kept in the warehouse (readable from BI): runs, per-key delivery
state, delivered event ids, rejected records and check results."""

from __future__ import annotations

from datetime import datetime, timezone

from phasegate.warehouse import Warehouse, qualified

TABLES = {
    "sync_runs": """
        run_id text primary key, sync_name text, started_at timestamp, finished_at timestamp,
        status text, config_hash text, dbt_invocation_id text, as_of_date date,
        planned_upserts bigint, planned_removes bigint, planned_events bigint,
        sent bigint, skipped bigint, rejected bigint, blocked bigint, message text""",
    "sync_state": """
        sync_name text, record_key text, fingerprint text, run_id text, delivered_at timestamp,
        primary key (sync_name, record_key)""",
    "delivered_events": """
        sync_name text, event_id text, run_id text, delivered_at timestamp,
        primary key (sync_name, event_id)""",
    "rejected_records": """
        sync_name text, record_id text, record_key text, record_kind text, reason text,
        run_id text, rejected_at timestamp, resolved_at timestamp""",
    "check_results": """
        run_id text, check_name text, passed boolean, observed text, allowed text,
        message text, checked_at timestamp, dbt_invocation_id text, config_hash text""",
}


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Ledger:
    def __init__(self, wh: Warehouse, schema: str):
        self.wh = wh
        self.schema = schema

    def table(self, name: str) -> str:
        return qualified(self.schema, name)

    def ensure(self) -> None:
        self.wh.ensure_schema(self.schema)
        for name, cols in TABLES.items():
            self.wh.execute(f"create table if not exists {self.table(name)} ({cols})")
        self.wh.commit()

    def start_run(self, run_id: str, sync_name: str, config_hash: str, invocation: str | None, as_of) -> None:
        self.wh.execute(
            f"insert into {self.table('sync_runs')} (run_id, sync_name, started_at, status, "
            "config_hash, dbt_invocation_id, as_of_date) values (?, ?, ?, 'running', ?, ?, ?)",
            (run_id, sync_name, now(), config_hash, invocation, as_of),
        )
        self.wh.commit()

    def finish_run(self, run_id: str, status: str, counts: dict, message: str = "") -> None:
        self.wh.execute(
            f"update {self.table('sync_runs')} set finished_at = ?, status = ?, "
            "planned_upserts = ?, planned_removes = ?, planned_events = ?, sent = ?, skipped = ?, "
            "rejected = ?, blocked = ?, message = ? where run_id = ?",
            (
                now(),
                status,
                counts.get("upserts", 0),
                counts.get("removes", 0),
                counts.get("events", 0),
                counts.get("sent", 0),
                counts.get("skipped", 0),
                counts.get("rejected", 0),
                counts.get("blocked", 0),
                message[:2000],
                run_id,
            ),
        )
        self.wh.commit()

    def record_checks(self, run_id: str, results, invocation: str | None, config_hash: str) -> None:
        rows = [
            (
                run_id,
                r.name,
                r.passed,
                str(r.observed),
                str(r.allowed),
                r.message[:2000],
                now(),
                invocation,
                config_hash,
            )
            for r in results
        ]
        self.wh.executemany(
            f"insert into {self.table('check_results')} values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
        self.wh.commit()
