"""Columnar in-memory event batch: numpy columns indexed into the chunk's customers.

Strings (ids, types, JSON properties) are only materialised when a chunk is written, so the
simulation works on compact integer codes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class Events:
    cust: np.ndarray  # int32 row of the customer inside the chunk
    anon: np.ndarray  # int32 anonymous-id slot (cust * 3 + k), -1 = no anonymous_id
    user: np.ndarray  # bool: user_id present
    occurred: np.ndarray  # int64 microseconds since epoch
    received: np.ndarray  # int64 microseconds since epoch
    etype: np.ndarray  # int8 code into catalog.ALL_EVENT_TYPES
    channel: np.ndarray  # int8 code into catalog.CHANNELS
    prop: np.ndarray  # int32 index into catalog properties, -1 = null
    amount: np.ndarray  # float64, NaN = null
    id_counter: np.ndarray  # uint64 event counter inside the chunk (event_id source)

    def __len__(self) -> int:
        return len(self.cust)

    def take(self, index: np.ndarray) -> Events:
        return Events(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def slice(self, start: int, stop: int) -> Events:
        """Rows [start, stop) as views, without copying."""
        return Events(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[Events]) -> Events:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


class EventBuffer:
    """Collects event groups from the behaviour simulators, broadcasting scalar columns.

    Events at or after ``end`` (responses that would happen after the window) are dropped on
    the way in, so no full-size filtered copy is ever needed.
    """

    def __init__(self, end: int) -> None:
        self.end = end
        self._parts: list[Events] = []

    def add(
        self,
        cust: np.ndarray,
        occurred: np.ndarray,
        etype: int | np.ndarray,
        channel: int | np.ndarray,
        *,
        anon: int | np.ndarray = -1,
        user: bool | np.ndarray = True,
        prop: int | np.ndarray = -1,
        amount: float | np.ndarray = np.nan,
    ) -> None:
        keep = np.asarray(occurred) < self.end
        n = int(keep.sum())

        def col(value, dtype):
            value = np.asarray(value, dtype=dtype)
            return value[keep] if value.ndim else np.full(n, value, dtype=dtype)

        self._parts.append(
            Events(
                cust=col(cust, np.int32),
                anon=col(anon, np.int32),
                user=col(user, bool),
                occurred=col(occurred, np.int64),
                received=np.zeros(n, np.int64),
                etype=col(etype, np.int8),
                channel=col(channel, np.int8),
                prop=col(prop, np.int32),
                amount=col(amount, np.float64),
                id_counter=np.zeros(n, np.uint64),
            )
        )

    def build(self) -> Events:
        events, self._parts = Events.concat(self._parts), []
        return events
