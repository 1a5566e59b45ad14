"""The destination contract: every platform module implements `check()` and
`write_batch()` over this base class. A batch is the atomic unit of delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

# "delete" is a GDPR/CCPA deletion request for one customer: `key` is the customer key at the
# destination and `payload` carries only the identifiers the sync has (`email`, `phone`; either
# may be absent or None). It erases the customer where the platform can; "remove" only takes
# the customer out of the sync.
RecordKind = Literal["upsert", "remove", "event", "delete"]

# Every destination type that declares supports_delete=False, with the reason it cannot delete,
# so that none is left out by accident; the destination rejects delete records with this reason.
DELETE_UNSUPPORTED: dict[str, str] = {
    "segment": "delete: Segment's HTTP Tracking API cannot delete a user; deletion is a separate "
    "SUPPRESS_WITH_DELETE regulation through Segment's Public API, with a workspace token; "
    "file it there",
    "rudderstack": "delete: RudderStack's HTTP API cannot delete a user; deletion is a separate "
    "suppression-with-delete regulation through RudderStack's User Suppression API, with a "
    "workspace token; file it there",
}


@dataclass(frozen=True)
class Record:
    record_id: str  # deterministic: the same content always has the same id (the dedup key)
    kind: RecordKind
    key: str  # the customer key at the destination
    payload: dict[str, Any]


@dataclass
class BatchResult:
    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # record_id -> reason


@dataclass(frozen=True)
class Capabilities:
    max_batch_records: int
    max_batch_bytes: int | None = None
    supports_remove: bool = True
    supports_events: bool = True
    dedupes_by_record_id: bool = False  # a resent record is not applied twice
    supports_delete: bool = False  # delete records erase the customer (see DELETE_UNSUPPORTED)


class Destination:
    type: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    # Batches the engine keeps in flight when the settings say nothing (max_concurrency).
    # write_batch must then be safe to call from that many threads at once.
    default_concurrency: ClassVar[int] = 1

    def check(self) -> None:
        """Raise PermanentError if the destination cannot accept writes (auth, path)."""

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        raise NotImplementedError

    def close(self) -> None:
        pass
