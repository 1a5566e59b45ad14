"""The sync engine: plan what each destination must receive (in the warehouse, against
the per-key state of what it last received), send it in batches, and record every
acknowledged batch before the next one, so a crash at any point resends at most the batch
in flight — with the same record ids, which deduplicating destinations ignore."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from phasegate.config import PhasegateConfig, SyncConfig
from phasegate.destinations import REGISTRY, Record, build_destination
from phasegate.errors import ConfigError, PermanentError
from phasegate.ledger import Ledger, now
from phasegate.locks import destination_lock
from phasegate.warehouse import Warehouse, qualified

log = logging.getLogger(__name__)

EVENT_LOOKBACK_DAYS = 7
IDENTIFIER_COLUMNS = ("email", "phone")


@dataclass
class SyncSummary:
    sync: str
    run_id: str
    upserts: int = 0
    removes: int = 0
    events: int = 0
    sent: int = 0
    rejected: int = 0
    blocked: int = 0
    skipped: int = 0
    status: str = "planned"
    output: str = ""
    rejections: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict:
        return {
            k: getattr(self, k)
            for k in ("upserts", "removes", "events", "sent", "rejected", "blocked", "skipped")
        }


def _concat_key(parts: list[str]) -> str:
    return "md5(" + " || '|' || ".join(f"coalesce(cast({p} as varchar), '~')" for p in parts) + ")"


class SyncPlanner:
    """Builds the plan tables for one sync in the ops schema."""

    def __init__(self, wh: Warehouse, ledger: Ledger, sync: SyncConfig, send_events: bool):
        self.wh, self.ledger, self.sync = wh, ledger, sync
        self.send_events = send_events
        self.schema = wh.schema
        self.attr_plan = ledger.table(f"plan__{sync.name}")
        self.event_plan = ledger.table(f"plan_events__{sync.name}")

    def journeys(self) -> list[str]:
        known = [
            r[0]
            for r in self.wh.query(
                f"select distinct journey from {qualified(self.schema, 'phasegate__journey_phases')} "
                "order by 1"
            )
        ]
        wanted = self.sync.journeys or known
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise ConfigError(
                f"sync '{self.sync.name}', field journeys: unknown journey(s) "
                f"{unknown}; configured journeys: {known}"
            )
        return wanted

    def attribute_columns(self, journeys: list[str]) -> list[tuple[str, str]]:
        """(sql expression over m/s, output name) pairs."""
        cols = []
        for j in journeys:
            cols.append((f"max(case when m.journey = '{j}' then m.phase end)", f"{j}_phase"))
            cols.append((f"max(case when m.journey = '{j}' then m.entered_on end)", f"{j}_phase_entered_on"))
        return cols

    def build(self, as_of: date) -> tuple[int, int, int]:
        journeys = self.journeys()
        s, name = self.schema, self.sync.name
        signal_cols = {
            r[0]
            for r in self.wh.query(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                (s, "phasegate__customer_signals"),
            )
        }
        missing = [f for f in self.sync.fields if f not in signal_cols]
        if missing:
            raise ConfigError(
                f"sync '{name}', field fields: unknown signal column(s) {missing}; "
                f"available: {sorted(signal_cols)}"
            )
        jlist = ", ".join(f"'{j}'" for j in journeys)
        pivot = ",\n".join(f"{expr} as {alias}" for expr, alias in self.attribute_columns(journeys))
        phase_filter = ""
        if self.sync.phases:
            plist = ", ".join(f"'{p}'" for p in self.sync.phases)
            phase_filter = f"having sum(case when m.phase in ({plist}) then 1 else 0 end) > 0"
        ids = list(self.sync.identifiers)
        payload_cols = [alias for _, alias in self.attribute_columns(journeys)] + list(self.sync.fields) + ids
        sig_select = "".join(f", sg.{f}" for f in self.sync.fields) + "".join(f", cu.{c}" for c in ids)

        def source(col: str) -> str:
            return ("sg." if col in self.sync.fields else "cu." if col in ids else "mb.") + col

        state = self.ledger.table("sync_state")
        fingerprint_sql = _concat_key([source(c) for c in payload_cols])
        self.wh.execute(f"drop table if exists {self.attr_plan}")
        self.wh.execute(f"""
            create table {self.attr_plan} as
            with members as (
                select m.customer_id, {pivot}
                from {qualified(s, "phasegate__phase_membership")} as m
                where m.journey in ({jlist})
                group by m.customer_id
                {phase_filter}
            ),
            desired as (
                select mb.*{sig_select},
                       {fingerprint_sql} as fingerprint
                from members as mb
                left join {qualified(s, "phasegate__customer_signals")} as sg
                  on sg.customer_id = mb.customer_id
                left join {qualified(s, "int_customers_unioned")} as cu
                  on cu.customer_id = mb.customer_id
            ),
            changes as (
                select 'upsert' as op, d.customer_id as record_key, d.fingerprint,
                       {", ".join("d." + c for c in payload_cols)}
                from desired as d
                left join {state} as st on st.sync_name = '{name}' and st.record_key = d.customer_id
                where st.fingerprint is null or st.fingerprint <> d.fingerprint
                union all
                select 'remove' as op, st.record_key, st.fingerprint,
                       {", ".join(("rc." + c) if c in ids else "null" for c in payload_cols)}
                from {state} as st
                left join {qualified(s, "int_customers_unioned")} as rc on rc.customer_id = st.record_key
                where st.sync_name = '{name}'
                  and not exists (select 1 from desired as d where d.customer_id = st.record_key)
            )
            select row_number() over (order by op desc, record_key) as seq,
                   md5('{name}' || '|' || op || '|' || record_key || '|' || fingerprint) as record_id,
                   changes.*
            from changes""")
        events = 0
        if self.send_events:
            events = self._build_events(journeys, as_of)
        counts = dict(self.wh.query(f"select op, count(*) from {self.attr_plan} group by op"))
        self.wh.commit()
        self.payload_cols = payload_cols
        return counts.get("upsert", 0), counts.get("remove", 0), events

    def _build_events(self, journeys: list[str], as_of: date) -> int:
        s, name = self.schema, self.sync.name
        jlist = ", ".join(f"'{j}'" for j in journeys)
        since = as_of - timedelta(days=EVENT_LOOKBACK_DAYS)
        initial = "" if self.sync.send_initial_entries else "and t.from_phase is not null"
        delivered = self.ledger.table("delivered_events")
        ev = self.sync.events
        ids = "".join(f", cu.{c}" for c in self.sync.identifiers)
        transitions = qualified(s, "phasegate__phase_transitions")
        customers = qualified(s, "int_customers_unioned")
        self.wh.execute(f"drop table if exists {self.event_plan}")
        self.wh.execute(
            f"""
            create table {self.event_plan} as
            with raw as (
                select md5('{name}' || '|' || t.transition_id || '|entered') as record_id,
                       t.customer_id as record_key, cast(? as varchar) as event_name, t.journey,
                       t.to_phase as phase, t.from_phase as other_phase,
                       t.transitioned_on as occurred_on, t.transition_id
                from {transitions} as t
                where t.journey in ({jlist}) and t.transitioned_on >= ? {initial}
                union all
                select md5('{name}' || '|' || t.transition_id || '|exited'),
                       t.customer_id, cast(? as varchar), t.journey, t.from_phase, t.to_phase,
                       t.transitioned_on, t.transition_id
                from {transitions} as t
                where t.journey in ({jlist}) and t.transitioned_on >= ? and t.from_phase is not null
            )
            select row_number() over (order by raw.occurred_on, raw.record_key, raw.event_name) as seq,
                   raw.*{ids}
            from raw
            left join {customers} as cu on cu.customer_id = raw.record_key
            where not exists (
                select 1 from {delivered} as d where d.sync_name = '{name}' and d.event_id = raw.record_id
            )""",
            (ev.entered, since, ev.exited, since),
        )
        ((n,),) = self.wh.query(f"select count(*) from {self.event_plan}")
        return n

    def drop(self) -> None:
        self.wh.execute(f"drop table if exists {self.attr_plan}")
        self.wh.execute(f"drop table if exists {self.event_plan}")
        self.wh.commit()


def _records(
    cols: list[str],
    rows: list[tuple],
    kind_col: str | None,
    payload_cols: list[str],
    field_mapping: dict[str, str],
) -> list[Record]:
    out = []
    idx = {c: i for i, c in enumerate(cols)}
    for row in rows:
        if kind_col:
            kind = row[idx["op"]]
            # A remove clears every attribute the sync owns; identifiers stay so audience
            # destinations can match the member to remove.
            payload = {
                field_mapping.get(c, c): None
                if kind == "remove" and c not in IDENTIFIER_COLUMNS
                else _jsonable(row[idx[c]])
                for c in payload_cols
            }
        else:
            kind = "event"
            cols_out = ["event_name", "journey", "phase", "other_phase", "occurred_on", "transition_id"]
            cols_out += [c for c in IDENTIFIER_COLUMNS if c in idx]
            payload = {c: _jsonable(row[idx[c]]) for c in cols_out}
        out.append(
            Record(
                record_id=row[idx["record_id"]],
                kind=kind,
                key=row[idx["record_key"]],
                payload=payload,
            )
        )
    return out


def _jsonable(v):
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (Decimal, float)):
        f = float(v)
        if math.isnan(f) or math.isinf(f):
            return None
        return int(f) if f.is_integer() else f
    return v


def run_sync(
    cfg: PhasegateConfig,
    wh: Warehouse,
    sync: SyncConfig,
    run_id: str,
    as_of: date,
    invocation: str | None,
    dry_run: bool = False,
    blocked: bool = False,
    progress: bool = True,
) -> SyncSummary:
    ledger = Ledger(wh, cfg.ops_schema)
    ledger.ensure()
    summary = SyncSummary(sync=sync.name, run_id=run_id)
    lock_dir = Path(cfg.project_dir) / ".phasegate" / "locks"
    with destination_lock(lock_dir, sync.name):
        capabilities = REGISTRY[sync.destination.type].capabilities
        # Audience and CRM destinations take no events: plan none rather than reject them.
        send_events = sync.send_events and capabilities.supports_events
        planner = SyncPlanner(wh, ledger, sync, send_events)
        summary.upserts, summary.removes, summary.events = planner.build(as_of)
        total = summary.upserts + summary.removes + summary.events
        if dry_run:
            summary.status = "dry_run"
            planner.drop()
            return summary
        ledger.start_run(run_id, sync.name, cfg.config_hash(), invocation, as_of)
        if blocked:
            summary.blocked, summary.status = total, "blocked"
            ledger.finish_run(run_id, "blocked", summary.counts(), "pre-activation checks failed")
            planner.drop()
            return summary
        dest = build_destination(sync.destination)
        try:
            dest.check()
        except PermanentError as exc:
            ledger.finish_run(run_id, "failed", summary.counts(), str(exc))
            raise
        summary.output = getattr(dest, "root", "") and str(Path(dest.root) / sync.name)
        batch_size = min(sync.batch_size, dest.capabilities.max_batch_records)
        with Progress(
            TextColumn(f"[bold]sync {sync.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not progress or total == 0,
            transient=False,
        ) as bar:
            task = bar.add_task("send", total=total)
            for plan, kind_col in ((planner.attr_plan, "op"), (planner.event_plan, None)):
                if kind_col is None and not send_events:
                    continue
                self_cols = planner.payload_cols
                n = summary.upserts + summary.removes if kind_col else summary.events
                for start in range(0, n, batch_size):
                    cols, rows = wh.query_with_columns(
                        f"select * from {plan} where seq > ? and seq <= ? order by seq",
                        (start, start + batch_size),
                    )
                    records = _records(cols, rows, kind_col, self_cols, sync.field_mapping)
                    result = dest.write_batch(sync.name, records)
                    _acknowledge(
                        wh,
                        ledger,
                        plan,
                        sync.name,
                        run_id,
                        start,
                        batch_size,
                        result,
                        records,
                        kind_col is None,
                    )
                    summary.sent += len(result.accepted)
                    summary.rejected += len(result.rejected)
                    summary.rejections.extend(list(result.rejected.items())[:5])
                    bar.advance(task, len(records))
        dest.close()
        planner.drop()
        summary.status = "partial" if summary.rejected else "success"
        ledger.finish_run(run_id, summary.status, summary.counts())
    return summary


def _acknowledge(
    wh: Warehouse,
    ledger: Ledger,
    plan: str,
    sync_name: str,
    run_id: str,
    start: int,
    size: int,
    result,
    records: list[Record],
    is_event: bool,
) -> None:
    """Record one acknowledged batch atomically: state for accepted records, rejections with
    their reason. Until this commits, the batch counts as in flight."""
    ts = now()
    by_id = {r.record_id: r for r in records}
    with wh.transaction():
        wh.executemany(
            f"insert into {ledger.table('rejected_records')} (sync_name, record_id, record_key, "
            "record_kind, reason, run_id, rejected_at) values (?, ?, ?, ?, ?, ?, ?)",
            [
                (sync_name, rid, by_id[rid].key, by_id[rid].kind, reason[:1000], run_id, ts)
                for rid, reason in result.rejected.items()
            ],
        )
        rejected = list(result.rejected)
        excl = ""
        params: list = [start, start + size]
        if rejected:
            excl = f"and p.record_id not in ({', '.join('?' for _ in rejected)})"
            params += rejected
        if is_event:
            wh.execute(
                f"insert into {ledger.table('delivered_events')} (sync_name, event_id, run_id, delivered_at) "
                f"select '{sync_name}', p.record_id, '{run_id}', ? from {plan} as p "
                f"where p.seq > ? and p.seq <= ? {excl}",
                [ts, *params],
            )
            return
        wh.execute(
            f"delete from {ledger.table('sync_state')} where sync_name = '{sync_name}' and record_key in "
            f"(select p.record_key from {plan} as p where p.seq > ? and p.seq <= ? {excl})",
            params,
        )
        wh.execute(
            f"insert into {ledger.table('sync_state')} "
            "(sync_name, record_key, fingerprint, run_id, delivered_at) "
            f"select '{sync_name}', p.record_key, p.fingerprint, '{run_id}', ? from {plan} as p "
            f"where p.op = 'upsert' and p.seq > ? and p.seq <= ? {excl}",
            [ts, *params],
        )


def new_run_id(prefix: str = "run") -> str:
    from ulid import ULID

    return f"{prefix}_{str(ULID()).lower()}"
