"""What one sync must send, computed in the warehouse: the attribute plan (upserts, removes,
deletes) against the per-key state of what the destination last received, and the event plan
(phase entered / exited) against the delivered-event ledger. Governance is applied here,
before anything can be sent: suppressed customers and deletion requests, holdouts, per-channel
consent, and the frequency-cap decisions of `phasegate.caps`."""

from __future__ import annotations

from datetime import date, timedelta

from phasegate.config import SyncConfig
from phasegate.errors import ConfigError
from phasegate.ledger import Ledger, now
from phasegate.warehouse import Warehouse, qualified

EVENT_LOOKBACK_DAYS = 7
HOLD_REASONS = ("suppressed", "held_out", "no_consent", "capped")


def _concat_key(parts: list[str]) -> str:
    return "md5(" + " || '|' || ".join(f"coalesce(cast({p} as varchar), '~')" for p in parts) + ")"


def _in_list(values: list[str]) -> str:
    # Values are validated names (journeys, phases from the warehouse or pydantic): quoting
    # doubles any quote anyway, so a value can never end the literal.
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


class SyncPlanner:
    """Builds the plan tables for one sync in the ops schema. Nothing here commits: the
    caller keeps the plan (and the held-back records) only if the run may send."""

    def __init__(
        self,
        wh: Warehouse,
        ledger: Ledger,
        sync: SyncConfig,
        send_events: bool,
        supports_delete: bool = False,
        full_resync: bool = False,
        retry_rejected: bool = False,
    ):
        self.wh, self.ledger, self.sync = wh, ledger, sync
        self.send_events = send_events
        self.supports_delete = supports_delete
        self.full_resync = full_resync
        self.retry_rejected = retry_rejected
        self.schema = wh.schema
        self.attr_plan = ledger.table(f"plan__{sync.name}")
        self.event_plan = ledger.table(f"plan_events__{sync.name}")
        self.held_back: dict[str, int] = {}
        self.deletes = 0
        self.payload_cols: list[str] = []

    def _mart(self, name: str) -> str:
        return qualified(self.schema, name)

    def journeys(self) -> list[str]:
        known = [
            r[0]
            for r in self.wh.query(
                f"select distinct journey from {self._mart('phasegate__journey_phases')} order by 1"
            )
        ]
        wanted = self.sync.journeys or known
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise ConfigError(
                f"sync '{self.sync.name}', field journeys: unknown journey(s) {unknown}; "
                f"configured journeys: {known}"
            )
        return wanted

    def _check_consent_channel(self) -> None:
        channel = self.sync.consent_channel
        if channel is None:
            return
        known = [
            r[0]
            for r in self.wh.query(
                f"select distinct channel from {self._mart('phasegate__customer_consents')}"
            )
        ]
        if known and channel not in known:
            raise ConfigError(
                f"sync '{self.sync.name}', field consent_channel: '{channel}' is not a consent channel "
                f"in the warehouse ({', '.join(sorted(known))}); use one of them, add it to "
                "phasegate__consent_channels, or set consent_channel: none for a destination that "
                "messages nobody"
            )

    def _signal_columns(self) -> set[str]:
        return {
            r[0]
            for r in self.wh.query(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                (self.schema, "phasegate__customer_signals"),
            )
        }

    def build(self, as_of: date) -> tuple[int, int, int]:
        """Plan tables for this sync; returns (upserts, removes + deletes, events)."""
        journeys = self.journeys()
        self._check_consent_channel()
        name = self.sync.name
        missing = [f for f in self.sync.fields if f not in self._signal_columns()]
        if missing:
            raise ConfigError(
                f"sync '{name}', field fields: unknown signal column(s) {missing}; "
                f"available: {sorted(self._signal_columns())}"
            )
        ids = list(self.sync.identifiers)
        attr_cols = []
        pivot = []
        for j in journeys:
            for col, alias in (("phase", f"{j}_phase"), ("entered_on", f"{j}_phase_entered_on")):
                pivot.append(
                    f"max(case when r.journey = '{j}' and not r.is_held_out then r.{col} end) as {alias}"
                )
                attr_cols.append(alias)
        payload_cols = attr_cols + list(self.sync.fields) + ids
        phases = self.sync.phases
        in_phase = f"r.phase in ({_in_list(phases)})" if phases else "1 = 1"
        consent = "coalesce(cs.is_granted, false) = false" if self.sync.consent_channel else "1 = 0"

        def source(col: str) -> str:
            return ("sg." if col in self.sync.fields else "cu." if col in ids else "c.") + col

        state = self.ledger.table("sync_state")
        rejected = self.ledger.table("rejected_records")
        candidates_sql = f"""
            with member_rows as (
                select m.customer_id, m.journey, m.phase, m.entered_on,
                       coalesce(h.is_held_out, false) as is_held_out
                from {self._mart("phasegate__phase_membership")} as m
                left join {self._mart("phasegate__holdout_assignments")} as h
                  on h.journey = m.journey and h.customer_id = m.customer_id
                where m.journey in ({_in_list(journeys)})
            ),
            candidates as (
                select r.customer_id, {", ".join(pivot)},
                       max(case when {in_phase} and not r.is_held_out then 1 else 0 end) as treated
                from member_rows as r
                group by r.customer_id
                having max(case when {in_phase} then 1 else 0 end) = 1
            ),
            classified as (
                select c.*{"".join(f", sg.{f}" for f in self.sync.fields)}{"".join(f", cu.{c}" for c in ids)},
                       case
                           when sp.customer_id is not null then 'suppressed'
                           when c.treated = 0 then 'held_out'
                           when {consent} then 'no_consent'
                       end as hold_reason,
                       {_concat_key([source(c) for c in payload_cols])} as fingerprint
                from candidates as c
                left join {self._mart("phasegate__suppressed_customers")} as sp
                  on sp.customer_id = c.customer_id
                left join {self._mart("phasegate__customer_consents")} as cs
                  on cs.customer_id = c.customer_id and cs.channel = '{self.sync.consent_channel or ""}'
                left join {self._mart("phasegate__customer_signals")} as sg on sg.customer_id = c.customer_id
                left join {self._mart("int_customers_unioned")} as cu on cu.customer_id = c.customer_id
            )"""
        changed = (
            "1 = 1" if self.full_resync else "(st.fingerprint is null or st.fingerprint <> d.fingerprint)"
        )
        not_rejected = (
            "1 = 1"
            if self.retry_rejected
            else f"""not exists (
                select 1 from {rejected} as rj
                where rj.sync_name = '{name}' and rj.resolved_at is null and rj.record_id = ch.record_id)"""
        )
        gone_op = (
            "case when sp.is_deletion_requested then 'delete' else 'remove' end"
            if self.supports_delete
            else "'remove'"
        )
        removed_payload = ", ".join(("rc." + c) if c in ids else "null" for c in payload_cols)
        self.wh.execute(f"drop table if exists {self.attr_plan}")
        # Stored in seq order: the engine reads and acknowledges plans by seq range, which
        # DuckDB then finds in a few row groups, already sorted (see sync._plan_batches).
        self.wh.execute(f"""
            create table {self.attr_plan} as
            {candidates_sql},
            desired as (select * from classified where hold_reason is null),
            changes as (
                select 'upsert' as op, d.customer_id as record_key, d.fingerprint,
                       false as deletion_requested, {", ".join("d." + c for c in payload_cols)}
                from desired as d
                left join {state} as st on st.sync_name = '{name}' and st.record_key = d.customer_id
                where {changed}
                union all
                select {gone_op}, st.record_key, st.fingerprint,
                       coalesce(sp.is_deletion_requested, false), {removed_payload}
                from {state} as st
                left join {self._mart("int_customers_unioned")} as rc on rc.customer_id = st.record_key
                left join {self._mart("phasegate__suppressed_customers")} as sp
                  on sp.customer_id = st.record_key
                where st.sync_name = '{name}'
                  and not exists (select 1 from desired as d where d.customer_id = st.record_key)
            ),
            identified as (
                select md5('{name}' || '|' || op || '|' || record_key || '|' || fingerprint) as record_id, *
                from changes
            )
            select row_number() over (order by case op when 'upsert' then 0 when 'remove' then 1 else 2 end,
                                      ch.record_key) as seq,
                   ch.*
            from identified as ch
            where {not_rejected}
            order by seq""")
        self.held_back = {
            reason: n
            for reason, n in self.wh.query(
                f"{candidates_sql} select hold_reason, count(*) from classified "
                "where hold_reason is not null group by hold_reason"
            )
        }
        events = self._build_events(journeys, as_of) if self.send_events else 0
        counts = dict(self.wh.query(f"select op, count(*) from {self.attr_plan} group by op"))

        self.payload_cols = payload_cols
        self.deletes = counts.get("delete", 0)
        return counts.get("upsert", 0), counts.get("remove", 0) + self.deletes, events

    def _build_events(self, journeys: list[str], as_of: date) -> int:
        """Phase-change events not yet delivered, held back, or rejected (unless retrying).
        An event held back (suppressed, held out, no consent, over the frequency cap) is
        recorded as such and never sent later: a late message about an old change is wrong
        more often than right."""
        s, name = self.schema, self.sync.name
        since = as_of - timedelta(days=EVENT_LOOKBACK_DAYS)
        initial = "" if self.sync.send_initial_entries else "and t.from_phase is not null"
        delivered = self.ledger.table("delivered_events")
        held = self.ledger.table("held_back_events")
        decisions = self.ledger.table("activation_decisions")
        rejected = self.ledger.table("rejected_records")
        ev = self.sync.events
        ids = "".join(f", cu.{c}" for c in self.sync.identifiers)
        transitions = qualified(s, "phasegate__phase_transitions")
        jlist = _in_list(journeys)
        consent = "coalesce(cs.is_granted, false) = false" if self.sync.consent_channel else "1 = 0"
        not_rejected = (
            "1 = 1"
            if self.retry_rejected
            else f"""not exists (select 1 from {rejected} as rj where rj.sync_name = '{name}'
                                 and rj.resolved_at is null and rj.record_id = c.record_id)"""
        )
        candidates = self.ledger.table(f"plan_event_candidates__{name}")
        self.wh.execute(f"drop table if exists {candidates}")
        self.wh.execute(
            f"""
            create table {candidates} as
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
            select raw.*{ids},
                   case
                       when sp.customer_id is not null then 'suppressed'
                       when coalesce(h.is_held_out, false) then 'held_out'
                       when {consent} then 'no_consent'
                       -- A first placement is not a change of behaviour: no cap applies.
                       when raw.other_phase is not null and coalesce(ad.decision, 'activated') <> 'activated'
                           then ad.decision
                   end as hold_reason
            from raw
            left join {qualified(s, "int_customers_unioned")} as cu on cu.customer_id = raw.record_key
            left join {qualified(s, "phasegate__suppressed_customers")} as sp
              on sp.customer_id = raw.record_key
            left join {qualified(s, "phasegate__holdout_assignments")} as h
              on h.journey = raw.journey and h.customer_id = raw.record_key
            left join {qualified(s, "phasegate__customer_consents")} as cs
              on cs.customer_id = raw.record_key and cs.channel = '{self.sync.consent_channel or ""}'
            left join {decisions} as ad on ad.transition_id = raw.transition_id
            where not exists (select 1 from {delivered} as d
                              where d.sync_name = '{name}' and d.event_id = raw.record_id)
              and not exists (select 1 from {held} as hb
                              where hb.sync_name = '{name}' and hb.event_id = raw.record_id)""",
            (ev.entered, since, ev.exited, since),
        )
        # Held-back events are recorded once (and counted once), and never planned again.
        self.wh.execute(
            f"insert into {held} (sync_name, event_id, record_key, reason, held_at) "
            f"select '{name}', record_id, record_key, hold_reason, ? from {candidates} "
            "where hold_reason is not null",
            (now(),),
        )
        for reason, n in self.wh.query(
            f"select hold_reason, count(*) from {candidates} where hold_reason is not null group by 1"
        ):
            self.held_back[f"{reason}_events"] = n
        self.wh.execute(f"drop table if exists {self.event_plan}")
        self.wh.execute(f"""
            create table {self.event_plan} as
            select row_number() over (order by c.occurred_on, c.record_key, c.event_name) as seq, c.*
            from {candidates} as c
            where c.hold_reason is null and {not_rejected}
            order by seq""")
        self.wh.execute(f"drop table {candidates}")
        ((n,),) = self.wh.query(f"select count(*) from {self.event_plan}")
        return n

    def drop(self) -> None:
        self.wh.execute(f"drop table if exists {self.attr_plan}")
        self.wh.execute(f"drop table if exists {self.event_plan}")
        self.wh.commit()
