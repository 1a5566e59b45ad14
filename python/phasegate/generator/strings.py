"""Vectorised string building: ids and formatted values for millions of rows without Python loops.

Fixed-width strings are built as ``(n, width)`` byte matrices and handed to Arrow as raw
buffers; that is orders of magnitude faster than formatting Python strings one by one.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_U64_MASK = (1 << 64) - 1


def mix64(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 finaliser of ``x + salt``.

    It is a bijection on uint64, so distinct counters always give distinct ids, while the
    output looks random (ids do not leak ordering the way raw counters would).
    """
    z = np.asarray(x).astype(np.uint64) + np.uint64(salt & _U64_MASK)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def from_matrix(m: np.ndarray) -> pa.StringArray:
    """Turn an ``(n, width)`` uint8 matrix of ASCII bytes into a string array (one row each)."""
    m = np.ascontiguousarray(m, dtype=np.uint8)
    n, width = m.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(m))
    large = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(m))
    return large.cast(pa.string())


def _byte_table(alphabet: bytes) -> np.ndarray:
    """The two hex characters of every byte value, packed in one uint16 for a 1-D gather."""
    chars = np.frombuffer(alphabet, dtype=np.uint8)
    values = np.arange(256)
    pairs = np.stack([chars[values >> 4], chars[values & 0xF]], axis=1)
    return np.ascontiguousarray(pairs).view(np.uint16).ravel()


_HEX_PAIRS = {False: _byte_table(b"0123456789abcdef"), True: _byte_table(b"0123456789ABCDEF")}


def hex_digits(words: np.ndarray, upper: bool = False) -> np.ndarray:
    """16 hex digits per uint64 as an ``(n, 16)`` ASCII matrix.

    Goes through big-endian bytes and a 256-entry table, so the temporaries stay at a few
    bytes per row (a per-nibble int64 matrix would need 128 bytes per row).
    """
    as_bytes = np.asarray(words, dtype=">u8").view(np.uint8)
    pairs = np.take(_HEX_PAIRS[upper], as_bytes)
    return pairs.view(np.uint8).reshape(-1, 16)


def dec_digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative ints as an ``(n, width)`` ASCII matrix."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (np.asarray(values, dtype=np.int64)[:, None] // powers) % 10
    return _DIGITS[digits]


def uuid_strings(counters: np.ndarray, salt: int, upper: bool = False) -> pa.StringArray:
    """UUID-shaped ids (8-4-4-4-12) that are unique per distinct counter value."""
    counters = np.asarray(counters, dtype=np.uint64)
    hi = hex_digits(mix64(counters, salt), upper)  # bijective => uniqueness
    lo = hex_digits(mix64(counters, salt ^ 0x5DEECE66D), upper)
    out = np.full((len(counters), 36), ord("-"), dtype=np.uint8)
    out[:, 0:8] = hi[:, 0:8]
    out[:, 9:13] = hi[:, 8:12]
    out[:, 14:18] = hi[:, 12:16]
    out[:, 19:23] = lo[:, 0:4]
    out[:, 24:36] = lo[:, 4:16]
    return from_matrix(out)


def prefixed_numbers(prefix: str, values: np.ndarray, width: int) -> pa.StringArray:
    """``prefix`` + zero-padded number, e.g. ``c0000042``."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    body = dec_digits(values, width)
    out = np.empty((len(body), len(head) + width), dtype=np.uint8)
    out[:, : len(head)] = head
    out[:, len(head) :] = body
    return from_matrix(out)


def fill_template(template: str, digits: np.ndarray) -> pa.StringArray:
    """Write digit columns into the ``D`` slots of ``template``, e.g. ``(DDD) DDD-DDDD``."""
    tpl = np.frombuffer(template.encode(), dtype=np.uint8)
    slots = np.flatnonzero(tpl == ord("D"))
    if len(slots) != digits.shape[1]:
        raise ValueError(f"template {template!r} has {len(slots)} slots, got {digits.shape[1]}")
    out = np.broadcast_to(tpl, (digits.shape[0], len(tpl))).copy()
    out[:, slots] = digits
    return from_matrix(out)


def scatter(parts: list[tuple[np.ndarray, pa.Array]], n: int) -> pa.Array:
    """Combine arrays computed for disjoint row subsets back into one array of length ``n``."""
    positions = np.concatenate([pos for pos, _ in parts]) if parts else np.empty(0, np.int64)
    if len(positions) != n:
        raise ValueError("parts must cover every row exactly once")
    values = pa.concat_arrays([arr for _, arr in parts])
    inverse = np.empty(n, dtype=np.int64)
    inverse[positions] = np.arange(n)
    return values.take(pa.array(inverse))


def take_masked(values: pa.Array, index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``values[index]`` with nulls where ``valid`` is False (or ``index`` < 0)."""
    invalid = index < 0 if valid is None else ~valid
    safe = np.where(invalid, 0, index)
    return values.take(pa.array(safe, mask=invalid))
