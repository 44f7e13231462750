"""Who is writing to a store: runs register while they run, so maintenance never works under them.

Runs share the store: several `mmfs run` processes may write at once (each commit replaces the
stored rows of its keys in the same commit, and a local store serialises that check-and-commit with
an `flock`, see `append.commit_lock`, so they neither duplicate nor lose rows). What must
not run beside a writer is what removes versions: `mmfs maintain` and `erase --purge-history`. Each
run therefore leaves a file named after its PID in `<store>/.mmfs-writers/` for its duration; a file
whose process is gone is stale and ignored, so a killed run never blocks the store. The single-file
lock of earlier releases (`.mmfs-writer.lock`) is still honoured. On object storage a PID means
nothing across machines: runs hold renewed leases there instead (`lock_remote`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from mmfs.errors import StoreConflict
from mmfs.store import lock_remote
from mmfs.store.objstore import is_object_uri

WRITERS_DIR = ".mmfs-writers"
LEGACY_LOCK_NAME = ".mmfs-writer.lock"


def _store_dir(store_uri: str) -> Path | None:
    return None if "://" in store_uri else Path(store_uri)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip() or "0")
    except (OSError, ValueError):
        return 0


def active_writers(store_uri: str, storage_options: Mapping[str, str] | None = None) -> list[int]:
    """PIDs of live processes, other than this one, that are writing to the store (sorted).

    On object storage: the PIDs of the unexpired leases other than this process's own.
    """
    if is_object_uri(store_uri):
        return sorted(int(str(w["pid"])) for w in _other_leases(store_uri, storage_options))
    root = _store_dir(store_uri)
    if root is None:
        return []
    candidates = [_read_pid(root / LEGACY_LOCK_NAME)] if (root / LEGACY_LOCK_NAME).is_file() else []
    folder = root / WRITERS_DIR
    if folder.is_dir():
        candidates += [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
    return sorted({pid for pid in candidates if pid != os.getpid() and _alive(pid)})


def _other_leases(store_uri: str, storage_options: Mapping[str, str] | None) -> list[dict[str, object]]:
    """Live leases on an object store, without the ones this process holds."""
    mine = set(_HELD)
    leases = lock_remote.live_leases(store_uri, WRITERS_DIR, storage_options)
    return [w for w in leases if w["name"] not in mine]


_HELD: list[str] = []  # lease names this process holds (a nested lock reuses nothing: leases are cheap)


def active_writer(store_uri: str, storage_options: Mapping[str, str] | None = None) -> int | None:
    """The PID of one live writer other than this process, else None."""
    writers = active_writers(store_uri, storage_options)
    return writers[0] if writers else None


@contextmanager
def writer_lock(store_uri: str, storage_options: Mapping[str, str] | None = None) -> Iterator[None]:
    """Register this process as a writer for the duration of a run (other runs may write too)."""
    if is_object_uri(store_uri):
        with lock_remote.lease(store_uri, WRITERS_DIR, storage_options) as name:
            _HELD.append(name)
            try:
                yield
            finally:
                _HELD.remove(name)
        return
    root = _store_dir(store_uri)
    if root is None:
        yield
        return
    folder = root / WRITERS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():  # tidy up after killed runs
        if entry.name.isdigit() and not _alive(int(entry.name)):
            entry.unlink(missing_ok=True)
    mine = folder / str(os.getpid())
    nested = mine.exists()
    mine.write_text(str(os.getpid()))
    try:
        yield
    finally:
        if not nested:
            mine.unlink(missing_ok=True)


def refuse_if_writing(store_uri: str, what: str, storage_options: Mapping[str, str] | None = None) -> None:
    """Raise StoreConflict when a run is writing: `what` must not remove versions under it."""
    if is_object_uri(store_uri):
        leases = _other_leases(store_uri, storage_options)
        if leases:
            who = ", ".join(f"{w['host']} pid {w['pid']}" for w in leases)
            raise StoreConflict(f"cannot {what}: runs ({who}) are writing to {store_uri}")
        return
    pid = active_writer(store_uri)
    if pid is not None:
        raise StoreConflict(f"cannot {what}: a run (pid {pid}) is writing to {store_uri}")
