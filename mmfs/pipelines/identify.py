"""Which bytes each input holds (its `media_id`): from the hash cache where the file is unchanged, else
read and hashed.

`identify` works on the columns of `inputs.Inputs`: one join of the listing's stats with the ledger's
`uri_stats` (uri, size, mtime_ns, inode) finds every unchanged file at once; only the rest (new,
changed, unreadable, objects) are looked at one by one (`identify_each`), so the per-file Python
work is the run's new work.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mmfs.config import PipelineConfig
from mmfs.errors import EmptyFile, MediaError, MediaLimitExceeded
from mmfs.media.hashing import FileStat, HashCache, file_stat, sha256_file
from mmfs.pipelines.inputs import Inputs
from mmfs.runners.progress import Progress
from mmfs.stages.items import PendingItem, SourceItem, StageFailure
from mmfs.stages.remote import sha256_object
from mmfs.store.objstore import is_object_uri

STAT_KEYS = ["uri", "size", "mtime_ns", "inode"]
IDS_SCHEMA = pa.schema([("row", pa.int64()), ("media_id", pa.string()), ("n_bytes", pa.int64())])

PreFailure = tuple[str, str, StageFailure]  # (quarantine key, uri, failure) of an input never hashed
# Hashing threads: one per core, at most 8 (past that a local disk, not the CPU, sets the pace).
HASH_THREADS = min(8, os.cpu_count() or 1)


def hash_items(
    items: list[SourceItem],
    cfg: PipelineConfig,
    show_progress: bool,
    cache: HashCache | None = None,
    stats: dict[str, FileStat] | None = None,
) -> tuple[list[PendingItem], list[PreFailure], int]:
    """Hash every item's bytes; merge items with the same bytes; collect unreadable ones.

    A local file whose stat matches `cache` keeps its cached media_id unread. `stats`, when given,
    receives the stat of every local file hashed afresh (recorded in the ledger by the run).
    """
    by_id: dict[str, PendingItem] = {}
    unreadable: list[PreFailure] = []
    duplicates = 0
    for item, found in zip(items, identify_each(items, cfg, show_progress, cache, stats), strict=True):
        if isinstance(found, StageFailure):
            unreadable.append((f"uri:{item.uri}", item.uri, found))
            continue
        media_id, n_bytes = found
        if media_id in by_id:
            by_id[media_id].uris.append(item.uri)
            duplicates += 1
        else:
            by_id[media_id] = PendingItem(media_id, item, [item.uri], n_bytes)
    return list(by_id.values()), unreadable, duplicates


def identify_each(
    items: list[SourceItem],
    cfg: PipelineConfig,
    show_progress: bool,
    cache: HashCache | None = None,
    stats: dict[str, FileStat] | None = None,
) -> list[tuple[str, int] | StageFailure]:
    """Per item (in order), its (media_id, size) from the cache or its bytes, or why it could not be read.

    Items are read and hashed on `HASH_THREADS` threads: reading a file and sha256 release the GIL,
    so a night's new files hash on every core instead of one (objects stream from the store as well).
    """
    progress = Progress(len(items), "hashed", enabled=show_progress and len(items) > 50)
    lookups = threading.Lock()  # the cache counts its hits

    def one(item: SourceItem) -> tuple[tuple[str, int] | StageFailure, FileStat | None]:
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

    out: list[tuple[str, int] | StageFailure] = []
    threads = min(HASH_THREADS, len(items))
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="mmfs-hash") as pool:
        for item, (found, stat) in zip(items, pool.map(one, items), strict=True):
            progress.advance(1)
            if stats is not None and stat is not None:
                stats[item.uri] = stat
            out.append(found)
    progress.close()
    return out


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


def identify(
    inputs: Inputs,
    cfg: PipelineConfig,
    cache: pa.Table | None,
    show_progress: bool = False,
    stats: dict[str, FileStat] | None = None,
) -> tuple[pa.Table, list[PreFailure]]:
    """Every readable input's `media_id` and size (`IDS_SCHEMA`, by row), and the unreadable ones.

    `cache` is `Ledger.cache_table()` (None: `--rehash`, every input read). A row whose uri and
    stat equal a cached entry's, and whose size is within the limits, takes its media_id from there
    in one join; the others go through `identify_each` (`stats` gets the stats of files hashed).
    """
    table = _with_stats(inputs).append_column("row", pa.array(range(len(inputs)), pa.int64()))
    hits = pa.table({"row": pa.array([], pa.int64()), "media_id": pa.array([], pa.string())})
    if cache is not None and cache.num_rows and table.num_rows:
        size = table.column("size")
        usable = pc.and_(pc.greater(size, 0), pc.less_equal(size, cfg.limits.max_bytes))
        local = table.filter(pc.fill_null(usable, False)).select([*STAT_KEYS, "row"])
        joined = local.join(cache, keys=STAT_KEYS, join_type="inner", use_threads=False)
        # one entry per row (a path recorded twice with the same stat holds the same bytes)
        hits = joined.group_by("row", use_threads=False).aggregate([("media_id", "min")])
        hits = hits.rename_columns(["row", "media_id"])
    found = table.select(["row", "size"]).join(hits, keys="row", join_type="inner", use_threads=False)
    cached = pa.table(
        {"row": found.column("row"), "media_id": found.column("media_id"), "n_bytes": found.column("size")},
        schema=IDS_SCHEMA,
    )
    rest = pc.invert(pc.is_in(table.column("row"), value_set=hits.column("row"))).to_numpy(
        zero_copy_only=False
    )
    rows = [i for i, todo in enumerate(rest) if todo]
    items = inputs.items(rows)
    unreadable: list[PreFailure] = []
    read: dict[str, list[Any]] = {"row": [], "media_id": [], "n_bytes": []}
    for row, item, got in zip(
        rows, items, identify_each(items, cfg, show_progress, None, stats), strict=True
    ):
        if isinstance(got, StageFailure):
            unreadable.append((f"uri:{item.uri}", item.uri, got))
            continue
        read["row"].append(row)
        read["media_id"].append(got[0])
        read["n_bytes"].append(got[1])
    ids = pa.concat_tables([cached, pa.table(read, schema=IDS_SCHEMA)])
    return ids.take(pc.sort_indices(ids.column("row"))), unreadable


def _with_stats(inputs: Inputs) -> pa.Table:
    """The inputs' uri and stat columns, local extras (files named, manifest rows) stat-ed now."""
    table = inputs.table.select(STAT_KEYS)
    missing = pc.and_(pc.is_null(table.column("size")), pc.greater_equal(inputs.table.column("extra"), 0))
    rows = [i for i, m in enumerate(missing.to_pylist()) if m]
    if not rows:
        return table
    sizes, mtimes, inodes = (table.column(c).to_pylist() for c in ("size", "mtime_ns", "inode"))
    for row, item in zip(rows, inputs.items(rows), strict=True):
        if is_object_uri(item.uri):
            continue
        try:
            st = file_stat(item.path)
        except OSError:
            continue  # hashing it reports why
        sizes[row], mtimes[row], inodes[row] = st.size, st.mtime_ns, st.inode
    return pa.table(
        {"uri": table.column("uri"), "size": sizes, "mtime_ns": mtimes, "inode": inodes},
        schema=table.schema,
    )
