"""One lock per sync destination. flock is released by the kernel when the holder dies,
so a lock left by a killed process never needs manual cleanup."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from phasegate.errors import LockHeldError


@contextlib.contextmanager
def destination_lock(lock_dir: Path, name: str):
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{name}.lock"
    fh = path.open("a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise LockHeldError(
            f"sync '{name}' is already running (lock {path} held by pid {holder}); "
            "wait for it to finish — a lock from a killed process is released automatically",
            holder,
        ) from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield path
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


@contextlib.contextmanager
def shared_lock(lock_dir: Path, name: str):
    """A short critical section shared by every sync (the activation budget): waits for the
    holder instead of failing, since holders finish in seconds."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / f"{name}.lock").open("a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
