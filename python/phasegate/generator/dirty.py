"""Fault injection: the realistic mess that downstream models must survive.

Each function returns what it changed *and* how many rows it touched, so ``truth.json`` can
report exactly what was injected (tests compare these counts with what is in the files).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .catalog import (
    CH,
    CLIENT_EVENT_CODES,
    ET,
    JUNK_EMAILS,
    MALFORMED_PHONES,
    UNKNOWN_EVENT_TYPES,
    US_PER_DAY,
    US_PER_SECOND,
)
from .config import DirtyConfig
from .events import Events

# Email kinds decided per customer by one uniform draw.
EMAIL_NONE, EMAIL_VALID, EMAIL_UNNORMALISED, EMAIL_MALFORMED, EMAIL_JUNK = range(5)
PHONE_NONE, PHONE_E164, PHONE_LOCAL, PHONE_MALFORMED = range(4)


def email_kinds(rng: np.random.Generator, has_email: np.ndarray, dirty: DirtyConfig):
    u = rng.random(len(has_email))
    cut_mal = dirty.malformed_email_rate
    cut_junk = cut_mal + dirty.junk_identifier_rate
    cut_unnorm = cut_junk + dirty.unnormalised_email_rate
    kind = np.select(
        [~has_email, u < cut_mal, u < cut_junk, u < cut_unnorm],
        [EMAIL_NONE, EMAIL_MALFORMED, EMAIL_JUNK, EMAIL_UNNORMALISED],
        EMAIL_VALID,
    ).astype(np.int8)
    return kind


def render_emails(
    rng: np.random.Generator, kind: np.ndarray, first: pa.Array, local: pa.Array, domain: pa.Array
) -> pa.Array:
    """Final email column: valid, unnormalised, malformed or junk per ``kind``."""
    n = len(kind)
    valid = pc.binary_join_element_wise(local, "@", domain, "")
    # Same address once trimmed and lower-cased: stitching must normalise, not reject.
    unnormalised = pc.choose(
        pa.array(rng.integers(0, 2, n).astype(np.int8)),
        pc.binary_join_element_wise("  ", pc.utf8_capitalize(local), "@", pc.utf8_upper(domain), " ", ""),
        pc.utf8_upper(valid),
    )
    no_tld = pc.replace_substring_regex(domain, r"\.[a-z]+$", "")
    malformed = pc.choose(
        pa.array(rng.integers(0, 5, n).astype(np.int8)),
        pc.binary_join_element_wise(local, "@", ""),  # john.doe@
        pc.binary_join_element_wise(first, " at ", domain, ""),  # jane at example.com
        pc.binary_join_element_wise(local, "@@", domain, ""),
        pc.binary_join_element_wise(local, domain, ""),  # lost the @
        pc.binary_join_element_wise(local, "@", no_tld, ""),  # john@gmail
    )
    junk = pa.array(JUNK_EMAILS).take(pa.array(rng.integers(0, len(JUNK_EMAILS), n)))
    return pc.choose(pa.array(kind), pa.nulls(n, pa.string()), valid, unnormalised, malformed, junk)


def phone_kinds(
    rng: np.random.Generator, has_phone: np.ndarray, dirty: DirtyConfig, local_share: float = 0.25
) -> np.ndarray:
    u = rng.random(len(has_phone))
    v = rng.random(len(has_phone))
    return np.select(
        [~has_phone, u < dirty.malformed_phone_rate, v < local_share],
        [PHONE_NONE, PHONE_MALFORMED, PHONE_LOCAL],
        PHONE_E164,
    ).astype(np.int8)


def malformed_phones(rng: np.random.Generator, n: int) -> pa.Array:
    return pa.array(MALFORMED_PHONES).take(pa.array(rng.integers(0, len(MALFORMED_PHONES), n)))


def shared_device_pool(
    rng: np.random.Generator, n: int, customers_total: int, rate: float, group_size: int = 50
):
    """Which customers use a shared device (kiosk, family tablet) and which pool device.

    The pool is sized for the whole population so groups of ~``group_size`` users form
    across chunks, not just inside one chunk.
    """
    selected = rng.random(n) < rate
    pool_size = max(1, round(customers_total * rate / group_size))
    pool_index = rng.integers(0, pool_size, int(selected.sum()))
    return selected, pool_index


def inject_event_faults(
    rng: np.random.Generator, ev: Events, dirty: DirtyConfig, window_end: int
) -> tuple[Events, dict[str, int], dict[str, int]]:
    """Apply event faults in a fixed order; returns events, fault counts, denominators.

    Each faulty row carries exactly one recognisable fault (besides being duplicated), so
    the counts can be recovered from the data itself.
    """
    n = len(ev)

    # Legacy trackers emit event types nobody modelled; they piggyback on real activity.
    # Copied from the pristine rows so they never inherit another fault.
    n_unknown = int(rng.binomial(n, dirty.unknown_event_type_rate)) if n else 0
    unknown = ev.take(rng.integers(0, n, n_unknown))
    unknown.etype[:] = ET[UNKNOWN_EVENT_TYPES[0]] + rng.integers(0, len(UNKNOWN_EVENT_TYPES), n_unknown)
    unknown.channel[:] = np.where(rng.random(n_unknown) < 0.5, CH["web"], CH["app"])
    unknown.prop[:] = -1
    unknown.amount[:] = np.nan
    unknown.occurred = np.minimum(
        unknown.occurred + (rng.uniform(0.0, 5.0, n_unknown) * US_PER_SECOND).astype(np.int64),
        window_end - 1,
    )
    unknown.received = np.maximum(unknown.received, unknown.occurred)

    client = np.isin(ev.etype, CLIENT_EVENT_CODES)
    # Client clock skew: occurred_at lands days after the window; received_at stays true.
    future = client & (rng.random(n) < dirty.future_timestamp_rate)
    ev.occurred[future] = window_end + (rng.uniform(1.0, 30.0, int(future.sum())) * US_PER_DAY).astype(
        np.int64
    )

    # Offline devices / backfills: delivered 2-20 days later. Exclusive with future so a
    # late event is recognisable as received_at - occurred_at >= 2 days.
    late = ~future & (rng.random(n) < dirty.late_event_rate)
    ev.received[late] = ev.occurred[late] + (rng.uniform(2.0, 20.0, int(late.sum())) * US_PER_DAY).astype(
        np.int64
    )

    null_ids = client & (rng.random(n) < dirty.null_id_rate)
    ev.user[null_ids] = False
    ev.anon[null_ids] = -1

    # At-least-once delivery: exact copies with the same event_id; half are redelivered later.
    dup = np.flatnonzero(rng.random(n) < dirty.duplicate_event_rate)
    ev = Events.concat([ev, unknown])
    ev.id_counter = np.arange(len(ev), dtype=np.uint64)
    copies = ev.take(dup)
    redelivered = rng.random(len(dup)) < 0.5
    copies.received += np.where(
        redelivered, (rng.uniform(1.0, 6 * 3600.0, len(dup)) * US_PER_SECOND).astype(np.int64), 0
    )
    ev = Events.concat([ev, copies])

    counts = {
        "duplicate_events": len(dup),
        "late_events": int(late.sum()),
        "null_ids": int(null_ids.sum()),
        "future_timestamps": int(future.sum()),
        "unknown_event_types": n_unknown,
    }
    denominators = {
        "duplicate_events": n,
        "late_events": n - int(future.sum()),
        "null_ids": int(client.sum()),
        "future_timestamps": int(client.sum()),
        "unknown_event_types": n,
    }
    return ev, counts, denominators
