"""Reading and hashing input files: the one routine that every runner runs, on the driver's threads
(local) or in the workers' tasks (Ray, Beam), so that the same file gives the same media_id, error
code and message wherever it was read. Results cross to the driver as JSON-able rows (`hash_rows`,
`from_hashed`).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mmfs import errors
from mmfs.config import PipelineConfig
from mmfs.errors import EmptyFile, ErrorCode, MediaError, MediaLimitExceeded
from mmfs.media.hashing import FileStat, HashCache, file_stat, sha256_file
from mmfs.stages.items import SourceItem, StageFailure
from mmfs.stages.remote import sha256_object
from mmfs.store.objstore import is_object_uri

# Hashing threads: one per core, at most 8 (past that a local disk, not the CPU, sets the pace).
HASH_THREADS = min(8, os.cpu_count() or 1)
# In a worker's task (one CPU reserved): two threads, so that one file is read while another hashes.
WORKER_HASH_THREADS = 2

Hashed = tuple[tuple[str, int] | StageFailure, FileStat | None]  # what hashing found, the stat it read


def hash_pairs(
    items: list[SourceItem],
    cfg: PipelineConfig,
    cache: HashCache | None = None,
    threads: int = HASH_THREADS,
    on_done: Callable[[], None] | None = None,
) -> list[Hashed]:
    """Per item (in order): (media_id, size) or its failure, and the stat of a file read afresh.

    The one hashing routine of every runner: the driver's threads (local) and the workers' tasks
    (Ray, Beam: `hash_rows`) run it, so the same file gives the same id, error code and message.
    """
    lookups = threading.Lock()  # the cache counts its hits

    def one(item: SourceItem) -> Hashed:
        try:
            stat = None if is_object_uri(item.uri) else file_stat(item.path)
            n_bytes = check_size(item, cfg, stat)
            cached = None
            if cache is not None and stat is not None:
                with lookups:
                    cached = cache.lookup(item.uri, stat)
            media_id = cached or _content_hash(item, cfg)
        except (OSError, MediaError) as err:
            error = err if isinstance(err, MediaError) else MediaError(f"{item.path.name}: {err}")
            return StageFailure("read", error), None
        return (media_id, n_bytes), (stat if cached is None else None)

    out: list[Hashed] = []
    n = max(1, min(threads, len(items)))
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="mmfs-hash") as pool:
        for found in pool.map(one, items):
            if on_done is not None:
                on_done()
            out.append(found)
    return out


def hash_chunk(rows: list[dict[str, Any]], cfg: PipelineConfig) -> dict[str, Any]:
    """A worker's task under Ray and Beam: `hash_rows`, with the host and process that ran it."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "results": hash_rows(rows, cfg)}


def hash_rows(rows: list[dict[str, Any]], cfg: PipelineConfig) -> list[dict[str, Any]]:
    """Worker side of hashing under Ray and Beam: `hash_pairs` over (uri, path, size) rows, as JSON-able
    dicts (`from_hashed` reads them back), so only ids, stats and errors travel to the driver."""
    items = [SourceItem(path=Path(r["path"]), uri=r["uri"], size=r["size"]) for r in rows]
    out: list[dict[str, Any]] = []
    for found, stat in hash_pairs(items, cfg, threads=WORKER_HASH_THREADS):
        if isinstance(found, StageFailure):
            err = found.error
            out.append(
                {
                    "stage": found.stage,
                    "error": type(err).__name__,
                    "code": int(err.code),
                    "message": err.message,
                }
            )
        else:
            out.append(
                {
                    "media_id": found[0],
                    "n_bytes": found[1],
                    "stat": None if stat is None else [stat.size, stat.mtime_ns, stat.inode],
                }
            )
    return out


def from_hashed(row: dict[str, Any]) -> Hashed:
    """A `hash_rows` result back as `hash_pairs` gives it: the same error class, code and message."""
    if "error" in row:
        cls = getattr(errors, str(row["error"]), None)
        if not (isinstance(cls, type) and issubclass(cls, errors.MmfsError)):
            cls = MediaError
        return StageFailure(row["stage"], cls(row["message"], code=ErrorCode(row["code"]))), None
    stat = row["stat"]
    return (row["media_id"], int(row["n_bytes"])), (None if stat is None else FileStat(*stat))


def _content_hash(item: SourceItem, cfg: PipelineConfig) -> str:
    """sha256 of the item's bytes: the file's, or the object's streamed (the same bytes, the same id)."""
    if is_object_uri(item.uri):
        return sha256_object(item.uri, cfg.sources.storage_options)
    return sha256_file(item.path)


def check_size(item: SourceItem, cfg: PipelineConfig, stat: FileStat | None = None) -> int:
    """The file's size; empty files and files over the byte limit are refused before hashing."""
    known = item.size if item.size is not None else (stat.size if stat is not None else None)
    size = known if known is not None else item.path.stat().st_size
    if size == 0:
        raise EmptyFile(f"{item.path.name}: empty file (0 bytes)")
    if size > cfg.limits.max_bytes:
        raise MediaLimitExceeded(
            f"{item.path.name}: {size} bytes is over the limit of {cfg.limits.max_bytes}"
        )
    return size
