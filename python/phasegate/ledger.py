"""Activation ledgers kept in the warehouse (readable from BI): runs, per-key delivery
state, delivered event ids, rejected records and check results."""

from __future__ import annotations

import json
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
    "held_back_events": """
        sync_name text, event_id text, record_key text, reason text, held_at timestamp,
        primary key (sync_name, event_id)""",
    "activation_decisions": """
        transition_id text primary key, customer_id text, journey text, to_phase text,
        transitioned_on date, journey_priority integer, decision text, decided_on date,
        run_id text, decided_at timestamp""",
    "deletion_log": """
        sync_name text, record_key text, method text, run_id text, completed_at timestamp""",
    "check_results": """
        run_id text, check_name text, passed boolean, observed text, allowed text,
        message text, checked_at timestamp, dbt_invocation_id text, config_hash text""",
    # Great Expectations validation results, one row per expectation evaluated.
    "gx_results": """
        run_id text, check_name text, suite text, expectation text, column_name text,
        success boolean, element_count bigint, unexpected_count bigint,
        unexpected_percent double precision, observed_value text, details text,
        checked_at timestamp""",
}


# Columns added after a table first shipped: `ensure()` adds them to existing ledgers.
ADDED_COLUMNS = {
    "sync_runs": ["held_back text", "deleted bigint"],
    "check_results": ["details text"],  # the check's samples as JSON (observed vs allowed rows)
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
        for name, cols in ADDED_COLUMNS.items():
            for col in cols:
                self.wh.execute(f"alter table {self.table(name)} add column if not exists {col}")
        self.wh.commit()

    def start_run(self, run_id: str, sync_name: str, config_hash: str, invocation: str | None, as_of) -> None:
        self.wh.execute(
            f"insert into {self.table('sync_runs')} (run_id, sync_name, started_at, status, "
            "config_hash, dbt_invocation_id, as_of_date) values (?, ?, ?, 'running', ?, ?, ?)",
            (run_id, sync_name, now(), config_hash, invocation, as_of),
        )
        self.wh.commit()

    def close_interrupted(self, sync_name: str, next_run_id: str) -> int:
        """Runs of `sync_name` still marked running when its destination lock is taken again:
        their process died mid-run. Marked `interrupted`, so BI shows no phantom live run; what
        they had not acknowledged is resent by `next_run_id`."""
        runs = self.table("sync_runs")
        ((n,),) = self.wh.query(
            f"select count(*) from {runs} where sync_name = ? and status = 'running'", (sync_name,)
        )
        if n:
            self.wh.execute(
                f"update {runs} set status = 'interrupted', message = ? "
                "where sync_name = ? and status = 'running'",
                (
                    f"the process ended before the run finished (killed or crashed); its "
                    f"unacknowledged batches are resent by {next_run_id}",
                    sync_name,
                ),
            )
            self.wh.commit()
        return n

    def finish_run(self, run_id: str, status: str, counts: dict, message: str = "") -> None:
        self.wh.execute(
            f"update {self.table('sync_runs')} set finished_at = ?, status = ?, "
            "planned_upserts = ?, planned_removes = ?, planned_events = ?, sent = ?, skipped = ?, "
            "rejected = ?, blocked = ?, message = ?, held_back = ?, deleted = ? where run_id = ?",
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
                json.dumps(counts.get("held_back") or {}, sort_keys=True),
                counts.get("deleted", 0),
                run_id,
            ),
        )
        self.wh.commit()

    def settle_run(
        self,
        run_id: str,
        sync_name: str,
        status: str,
        counts: dict,
        message: str,
        config_hash: str,
        invocation: str | None,
        as_of,
    ) -> None:
        """Records how a sync that raised ended, unless its run already says so. A sync that
        failed before its run started (a held lock, a config error while planning) gets a
        row of its own, so the audit lists every sync of an activation."""
        rows = self.wh.query(f"select status from {self.table('sync_runs')} where run_id = ?", (run_id,))
        if rows and rows[0][0] != "running":
            return
        if not rows:
            self.start_run(run_id, sync_name, config_hash, invocation, as_of)
        self.finish_run(run_id, status, counts, message)

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
                json.dumps(r.samples[:20], default=str)[:20000],
            )
            for r in results
        ]
        self.wh.executemany(
            f"insert into {self.table('check_results')} (run_id, check_name, passed, observed, allowed, "
            "message, checked_at, dbt_invocation_id, config_hash, details) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        ts = now()
        gx_rows = [
            (
                run_id,
                r.name,
                g["suite"],
                g["expectation"],
                g["column"],
                g["success"],
                g["element_count"],
                g["unexpected_count"],
                g["unexpected_percent"],
                None if g["observed_value"] is None else json.dumps(g["observed_value"], default=str),
                json.dumps(g["details"], default=str)[:20000],
                ts,
            )
            for r in results
            for g in getattr(r, "gx", [])
        ]
        self.wh.executemany(
            f"insert into {self.table('gx_results')} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", gx_rows
        )
        self.wh.commit()
