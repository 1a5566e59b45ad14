"""Arrow schemas, per-chunk table builders and the streaming Parquet sinks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .catalog import (
    ALL_EVENT_TYPES,
    CHANNELS,
    CONSENT_CHANNELS,
    COUNTRIES,
    US_PER_SECOND,
    Catalog,
)
from .dirty import EMAIL_NONE, EMAIL_VALID, PHONE_NONE
from .events import Events
from .population import MAX_ANON, NEVER, Population
from .simulate import Purchases
from .strings import take_masked, uuid_strings

TS = pa.timestamp("us", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("signup_at", TS, nullable=False),
            pa.field("email", pa.string()),
            pa.field("phone", pa.string()),
            pa.field("country", pa.string(), nullable=False),
        ]
    ),
    "identities": pa.schema(
        [
            pa.field("identity_type_a", pa.string(), nullable=False),
            pa.field("identity_value_a", pa.string(), nullable=False),
            pa.field("identity_type_b", pa.string(), nullable=False),
            pa.field("identity_value_b", pa.string(), nullable=False),
            pa.field("observed_at", TS, nullable=False),
        ]
    ),
    "events": pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("occurred_at", TS, nullable=False),
            pa.field("received_at", TS, nullable=False),
            pa.field("user_id", pa.string()),
            pa.field("anonymous_id", pa.string()),
            pa.field("event_type", pa.string(), nullable=False),
            pa.field("channel", pa.string(), nullable=False),
            pa.field("amount", pa.float64()),
            pa.field("properties", pa.string()),
        ]
    ),
    "consents": pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("channel", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("updated_at", TS, nullable=False),
        ]
    ),
    "suppressions": pa.schema(
        [
            pa.field("identifier_type", pa.string(), nullable=False),
            pa.field("identifier_value", pa.string(), nullable=False),
            pa.field("action", pa.string(), nullable=False),
            pa.field("reason", pa.string()),
            pa.field("requested_at", TS, nullable=False),
        ]
    ),
    "truth": pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("lambda", pa.float64(), nullable=False),
            pa.field("p", pa.float64(), nullable=False),
            pa.field("n_orders", pa.int64(), nullable=False),
            pa.field("first_order_at", TS),
            pa.field("last_order_at", TS),
            pa.field("dropped", pa.bool_(), nullable=False),
            pa.field("dropout_at", TS),
            pa.field("alive", pa.bool_(), nullable=False),
        ]
    ),
}


def _ts(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    mask = None if valid is None else ~valid
    return pa.array(np.asarray(values, dtype=np.int64), type=TS, mask=mask)


def _labels(vocab: pa.Array, codes: np.ndarray) -> pa.Array:
    return vocab.take(pa.array(np.asarray(codes, dtype=np.int64)))


def customers_table(pop: Population) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pop.customer_id,
            _ts(pop.signup),
            pop.email,
            pop.phone,
            _labels(pa.array(COUNTRIES), pop.country),
        ],
        schema=SCHEMAS["customers"],
    )


def identities_table(pop: Population) -> pa.Table:
    login, first_seen = pop.anon_login.ravel(), pop.anon_first_seen.ravel()
    slots = np.flatnonzero(login < NEVER)
    with_email = np.flatnonzero(pop.email_kind != EMAIL_NONE)
    with_phone = np.flatnonzero(pop.phone_kind != PHONE_NONE)
    user, anon = pop.customer_id, pop.anon_ids
    # Phone numbers are confirmed a moment after the signup form is submitted.
    phone_seen = pop.signup[with_phone] + US_PER_SECOND
    edges = [
        # (type_a, values_a, type_b, values_b, rows into values_a, rows into values_b, observed)
        ("anonymous_id", anon, "user_id", user, slots, slots // MAX_ANON, login[slots]),
        ("email", pop.email, "user_id", user, with_email, with_email, pop.signup[with_email]),
        ("phone", pop.phone, "user_id", user, with_phone, with_phone, phone_seen),
        ("device_id", pop.device_ids, "anonymous_id", anon, slots, slots, first_seen[slots]),
    ]
    columns: list[list[pa.Array]] = [[], [], [], [], []]
    for type_a, values_a, type_b, values_b, rows_a, rows_b, observed in edges:
        n = len(rows_a)
        columns[0].append(pa.array([type_a]).take(pa.array(np.zeros(n, int))))
        columns[1].append(values_a.take(pa.array(rows_a)))
        columns[2].append(pa.array([type_b]).take(pa.array(np.zeros(n, int))))
        columns[3].append(values_b.take(pa.array(rows_b)))
        columns[4].append(_ts(observed))
    return pa.Table.from_arrays([pa.concat_arrays(parts) for parts in columns], schema=SCHEMAS["identities"])


def events_tables(
    ev: Events,
    pop: Population,
    catalog: Catalog,
    chunk_index: int,
    id_salt: int,
    slice_rows: int = 500_000,
) -> Iterator[pa.Table]:
    """The chunk's events as tables of at most ``slice_rows`` rows.

    Strings cost far more than the integer codes, so they are materialised per slice.
    """
    # Landing tables arrive in delivery order.
    ev = ev.take(np.argsort(ev.received, kind="stable"))
    for lo in range(0, max(len(ev), 1), slice_rows):
        part = ev.slice(lo, lo + slice_rows)
        counter = (np.uint64(chunk_index) << np.uint64(32)) + part.id_counter
        yield pa.Table.from_arrays(
            [
                uuid_strings(counter, id_salt),
                _ts(part.occurred),
                _ts(part.received),
                take_masked(pop.customer_id, part.cust.astype(np.int64), valid=part.user),
                take_masked(pop.anon_ids, part.anon.astype(np.int64)),
                _labels(pa.array(ALL_EVENT_TYPES), part.etype),
                _labels(pa.array(CHANNELS), part.channel),
                pa.array(part.amount, type=pa.float64(), from_pandas=True),
                take_masked(catalog.properties, part.prop.astype(np.int64)),
            ],
            schema=SCHEMAS["events"],
        )


def consents_table(pop: Population) -> pa.Table:
    rows, channel, status, at = [], [], [], []
    for code, name in enumerate(CONSENT_CHANNELS):
        c = pop.consent[name]
        for granted, times in ((True, c.granted), (False, c.revoked), (True, c.regranted)):
            hit = np.flatnonzero(times < NEVER)
            rows.append(hit)
            channel.append(np.full(len(hit), code))
            status.append(np.full(len(hit), 0 if granted else 1))
            at.append(times[hit])
    rows_a, channel_a = np.concatenate(rows), np.concatenate(channel)
    status_a, at_a = np.concatenate(status), np.concatenate(at)
    order = np.lexsort((at_a, channel_a, rows_a))
    return pa.Table.from_arrays(
        [
            pop.customer_id.take(pa.array(rows_a[order])),
            _labels(pa.array(CONSENT_CHANNELS), channel_a[order]),
            _labels(pa.array(["granted", "revoked"]), status_a[order]),
            _ts(at_a[order]),
        ],
        schema=SCHEMAS["consents"],
    )


def suppressions_table(
    rng: np.random.Generator, pop: Population, suppress_share: float, delete_share: float, end_us: int
) -> pa.Table:
    """The business's suppression list: opt-outs and deletion requests for a small share of
    customers, named by customer id or, when they have a usable address, by email (so the
    identity map has to resolve them)."""
    n = len(pop)
    u = rng.random(n)
    delete = u < delete_share
    chosen = np.flatnonzero(u < delete_share + suppress_share)
    by_email = (pop.email_kind[chosen] == EMAIL_VALID) & (rng.random(len(chosen)) < 0.5)
    ids = pop.customer_id.take(pa.array(chosen)).to_pylist()
    emails = pop.email.take(pa.array(chosen)).to_pylist()
    days_before = rng.integers(0, 60, len(chosen))
    at = end_us - days_before * 86_400 * US_PER_SECOND - rng.integers(1, 86_400 * US_PER_SECOND, len(chosen))
    return pa.Table.from_arrays(
        [
            pa.array(["email" if e else "customer_id" for e in by_email], pa.string()),
            pa.array([emails[i] if by_email[i] else ids[i] for i in range(len(chosen))], pa.string()),
            pa.array(["delete" if delete[c] else "suppress" for c in chosen], pa.string()),
            pa.array(["gdpr_erasure" if delete[c] else "unsubscribed_all" for c in chosen], pa.string()),
            _ts(at),
        ],
        schema=SCHEMAS["suppressions"],
    )


def truth_table(pop: Population, buys: Purchases) -> pa.Table:
    n = len(pop)
    has = buys.n_orders > 0
    # Orders are generated in purchase-index order, so min/max per customer is first/last.
    first = np.full(n, NEVER, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    np.minimum.at(first, buys.order_cust, buys.order_time)
    np.maximum.at(last, buys.order_cust, buys.order_time)
    dropped = buys.dropped
    return pa.Table.from_arrays(
        [
            pop.customer_id,
            pa.array(buys.lam),
            pa.array(buys.p),
            pa.array(buys.n_orders.astype(np.int64)),
            _ts(np.where(has, first, 0), has),
            _ts(np.where(has, last, 0), has),
            pa.array(dropped),
            _ts(np.where(dropped, buys.dropout_at, 0), dropped),
            pa.array(~dropped),
        ],
        schema=SCHEMAS["truth"],
    )


class ParquetSinks:
    """One ParquetWriter per output; files appear under their final name only on success."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = {name: 0 for name in SCHEMAS}

    def path(self, name: str) -> Path:
        return self.out / f"{name}.parquet"

    def write(self, name: str, table: pa.Table) -> None:
        writer = self._writers.get(name)
        if writer is None:
            writer = pq.ParquetWriter(str(self.path(name)) + ".tmp", SCHEMAS[name], compression="zstd")
            self._writers[name] = writer
        writer.write_table(table)
        self.rows[name] += table.num_rows

    def __enter__(self) -> ParquetSinks:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for writer in self._writers.values():
            writer.close()
        for name in self._writers:
            tmp = str(self.path(name)) + ".tmp"
            if exc_type is None:
                os.replace(tmp, self.path(name))
            else:
                os.remove(tmp)


def write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
