"""Which bytes each input holds (its `media_id`): from the hash cache where the file is unchanged, else
read and hashed.

`identify` works on the columns of `inputs.Inputs`: one join of the listing's stats with the ledger's
`uri_stats` (uri, size, mtime_ns, inode) finds every unchanged file at once; only the rest (new,
changed, unreadable, objects) are looked at one by one (`identify_each`), so the per-file Python
work is the run's new work.
"""

from __future__ import annotations

import sys
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mmfs.config import PipelineConfig
from mmfs.media.hashing import FileStat, HashCache, file_stat
from mmfs.pipelines.inputs import Inputs
from mmfs.runners.progress import Progress
from mmfs.stages.hash_files import from_hashed, hash_pairs
from mmfs.stages.items import PendingItem, SourceItem, StageFailure
from mmfs.store.objstore import is_object_uri

STAT_KEYS = ["uri", "size", "mtime_ns", "inode"]
IDS_SCHEMA = pa.schema([("row", pa.int64()), ("media_id", pa.string()), ("n_bytes", pa.int64())])

PreFailure = tuple[str, str, StageFailure]  # (quarantine key, uri, failure) of an input never hashed
CHUNK_BYTES = 256 * 2**20  # known bytes per worker task, at most (a big file is a task of its own)
# (host, pid) that hashed each chunk of the last plan's new files under Ray or Beam: tests, benchmarks.
HASHED_ON: list[tuple[str, int]] = []


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
    out: list[tuple[str, int] | StageFailure] = []
    for item, (found, stat) in zip(
        items, hash_pairs(items, cfg, cache, on_done=lambda: progress.advance(1)), strict=True
    ):
        if stats is not None and stat is not None:
            stats[item.uri] = stat
        out.append(found)
    progress.close()
    return out


def item_row(item: SourceItem) -> dict[str, Any]:
    """What a worker needs to hash an item: its uri, path and listed size."""
    return {"uri": item.uri, "path": str(item.path), "size": item.size}


def chunk_rows(rows: list[dict[str, Any]], sizes: list[int | None]) -> list[list[dict[str, Any]]]:
    """Rows in order, cut into tasks: about 1/32 of the files each (8 to 512), at most `CHUNK_BYTES`
    of known size, so a task's start-up is spread over many files and big files spread over workers."""
    per = min(512, max(8, -(-len(rows) // 32)))
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    held = 0
    for row, size in zip(rows, sizes, strict=True):
        if current and (len(current) >= per or held + (size or 0) > CHUNK_BYTES):
            chunks.append(current)
            current, held = [], 0
        current.append(row)
        held += size or 0
    if current:
        chunks.append(current)
    return chunks


def hash_new(
    items: list[SourceItem],
    sizes: list[int | None],
    cfg: PipelineConfig,
    show_progress: bool,
    stats: dict[str, FileStat] | None,
    scratch: str | None,
) -> list[tuple[str, int] | StageFailure]:
    """`identify_each` for the files the cache does not know, where the runner runs: on the driver's
    threads (local), in Ray tasks or in a Beam pipeline (the driver then reads none of their bytes).

    `sizes`: the listing's sizes (to cut tasks by bytes); `scratch`: a folder every worker can write
    (under the store) where Beam leaves its results for the driver.
    """
    kind = cfg.runner.kind
    if kind not in ("ray", "beam") or not items:
        return identify_each(items, cfg, show_progress, None, stats)
    chunks = chunk_rows([item_row(i) for i in items], sizes)
    progress = Progress(len(items), "hashed", enabled=show_progress and len(items) > 50)
    if kind == "ray":
        from mmfs.runners.ray import hash_on_ray

        results = hash_on_ray(chunks, cfg, progress.advance)
    else:
        from mmfs.runners.beam import hash_on_beam

        results = hash_on_beam(chunks, cfg, scratch)
        progress.advance(len(items))
    progress.close()
    HASHED_ON.clear()
    HASHED_ON.extend((str(doc["host"]), int(doc["pid"])) for doc in results)
    out: list[tuple[str, int] | StageFailure] = []
    for item, row in zip(items, (r for doc in results for r in doc["results"]), strict=True):
        found, stat = from_hashed(row)
        if stats is not None and stat is not None:
            stats[item.uri] = stat
        out.append(found)
    return out


def release_workers() -> None:
    """Stop a Ray that hashing started and no execution stopped (a plan, or a run whose new files all
    held known bytes); nothing when Ray was never imported or the caller started it."""
    module = sys.modules.get("mmfs.runners.ray")
    if module is not None:
        module.release_ray()


def identify(
    inputs: Inputs,
    cfg: PipelineConfig,
    cache: pa.Table | None,
    show_progress: bool = False,
    stats: dict[str, FileStat] | None = None,
    scratch: str | None = None,
) -> tuple[pa.Table, list[PreFailure]]:
    """Every readable input's `media_id` and size (`IDS_SCHEMA`, by row), and the unreadable ones.

    `cache` is `Ledger.cache_table()` (None: `--rehash`, every input read). A row whose uri and
    stat equal a cached entry's, and whose size is within the limits, takes its media_id from there
    in one join; the others are hashed where the runner runs (`hash_new`; `stats` gets the stats of
    files hashed, `scratch` is its folder for Beam's results).
    """
    table = input_stats(inputs).append_column("row", pa.array(range(len(inputs)), pa.int64()))
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
    sizes = table.column("size").take(pa.array(rows, pa.int64())).to_pylist()
    unreadable: list[PreFailure] = []
    read: dict[str, list[Any]] = {"row": [], "media_id": [], "n_bytes": []}
    for row, item, got in zip(
        rows, items, hash_new(items, sizes, cfg, show_progress, stats, scratch), strict=True
    ):
        if isinstance(got, StageFailure):
            unreadable.append((f"uri:{item.uri}", item.uri, got))
            continue
        read["row"].append(row)
        read["media_id"].append(got[0])
        read["n_bytes"].append(got[1])
    ids = pa.concat_tables([cached, pa.table(read, schema=IDS_SCHEMA)])
    return ids.take(pc.sort_indices(ids.column("row"))), unreadable


def input_stats(inputs: Inputs) -> pa.Table:
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
