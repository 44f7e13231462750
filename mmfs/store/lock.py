"""A writer lock in the store folder, so maintenance never removes versions under a running pipeline.

The lock is a file holding the writer's PID. A lock whose process is gone is stale and ignored, so a
killed run never blocks the store. Object-store URIs have no lock (their commits are atomic; cleanup
there should be scheduled outside run windows).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmfs.errors import StoreConflict

LOCK_NAME = ".mmfs-writer.lock"


def _lock_path(store_uri: str) -> Path | None:
    return None if "://" in store_uri else Path(store_uri) / LOCK_NAME


def active_writer(store_uri: str) -> int | None:
    """The PID of a live process holding the writer lock, else None."""
    path = _lock_path(store_uri)
    if path is None or not path.is_file():
        return None
    try:
        pid = int(path.read_text().strip() or "0")
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError, OSError):
        return None
    return pid if pid != os.getpid() else None


@contextmanager
def writer_lock(store_uri: str) -> Iterator[None]:
    """Hold the writer lock for the duration of a run (re-entrant for the same process)."""
    path = _lock_path(store_uri)
    if path is None:
        yield
        return
    other = active_writer(store_uri)
    if other is not None:
        raise StoreConflict(f"another run (pid {other}) is writing to {store_uri}", retryable=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(os.getpid()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def refuse_if_writing(store_uri: str, what: str) -> None:
    """Raise StoreConflict when a run is writing: `what` must not remove versions under it."""
    pid = active_writer(store_uri)
    if pid is not None:
        raise StoreConflict(f"cannot {what}: a run (pid {pid}) is writing to {store_uri}", retryable=True)
