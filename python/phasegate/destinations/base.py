"""The destination contract: every platform module implements `check()` and
`write_batch()` over this base class. A batch is the atomic unit of delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

RecordKind = Literal["upsert", "remove", "event"]


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


class Destination:
    type: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def check(self) -> None:
        """Raise PermanentError if the destination cannot accept writes (auth, path)."""

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        raise NotImplementedError

    def close(self) -> None:
        pass
