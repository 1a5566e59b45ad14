"""How the engine cuts a plan into batches: plan rows are read several batches per query, and
each batch must still be exactly the rows its ack covers (start < seq <= start + size), with
the payload each kind of record carries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

import phasegate.sync as engine
from phasegate.profiles import WarehouseTarget
from phasegate.warehouse import DuckDBWarehouse

OPS = ["upsert"] * 15 + ["remove"] * 5 + ["delete"] * 3


@pytest.fixture
def wh(tmp_path):
    wh = DuckDBWarehouse(WarehouseTarget("t", "duckdb", {"path": str(tmp_path / "w.duckdb")}))
    wh.execute(
        "create table plan (seq bigint, record_id text, record_key text, op text, fingerprint text, "
        "deletion_requested boolean, phase text, entered date, orders decimal(10, 2), email text)"
    )
    rows = [
        (seq, f"r{seq}", f"c{seq}", op, f"f{seq}", op == "delete" or seq == 18, "active",
         date(2026, 1, seq % 28 + 1), Decimal("2.5") if seq % 2 else Decimal("3"), f"p{seq}@example.com")
        for seq, op in enumerate(OPS, start=1)
    ]  # fmt: skip
    wh.executemany("insert into plan values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    wh.commit()
    yield wh
    wh.close()


@pytest.mark.parametrize("read_ahead", [1, 4, 10, 20_000])
def test_batches_are_the_seq_ranges_their_acks_cover(wh, monkeypatch, read_ahead):
    monkeypatch.setattr(engine, "READ_AHEAD_ROWS", read_ahead)
    planner = SimpleNamespace(attr_plan="plan", payload_cols=["phase", "entered", "orders", "email"])
    sync = SimpleNamespace(field_mapping={"phase": "lifecycle_phase"})
    summary = engine.SyncSummary(sync="s", run_id="r", upserts=15, removes=8)
    (phase,) = engine._plan_batches(wh, planner, sync, summary, False, 4)
    batches = list(phase)
    assert [b.start for b in batches] == list(range(0, 23, 4))
    for b in batches:
        assert b.size == 4 and not b.is_event
        seqs = range(b.start + 1, min(b.start + 4, 23) + 1)
        assert [r.record_id for r in b.records] == [f"r{s}" for s in seqs]
        assert [r.kind for r in b.records] == [OPS[s - 1] for s in seqs]
        assert b.deletions == any(OPS[s - 1] == "delete" or s == 18 for s in seqs)
    records = {r.record_id: r for b in batches for r in b.records}
    assert records["r3"].payload == {
        "lifecycle_phase": "active",
        "entered": "2026-01-04",
        "orders": 2.5,
        "email": "p3@example.com",
    }
    assert records["r4"].payload["orders"] == 3 and isinstance(records["r4"].payload["orders"], int)
    # a remove clears what the sync owns and keeps the identifiers; a delete carries only them
    assert records["r16"].payload == {
        "lifecycle_phase": None,
        "entered": None,
        "orders": None,
        "email": "p16@example.com",
    }
    assert records["r21"].payload == {"email": "p21@example.com"}
    assert records["r21"].key == "c21"
