"""What a run would do, decided before any decoding: hash, de-duplicate, and compare with the store.

`mmfs run` uses the same functions to choose its work; `mmfs plan` prints them as a dry run, with
the tables whose rows a config change made stale.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mmfs.config import PipelineConfig
from mmfs.media.hashing import FileStat, HashCache
from mmfs.pipelines.identify import PreFailure, hash_items, identify, release_workers
from mmfs.pipelines.inputs import Inputs
from mmfs.pipelines.retry import retry_due
from mmfs.pipelines.sources import check_arguments, list_inputs
from mmfs.stages.items import PendingItem
from mmfs.stages.ledger import FEATURE_TABLES
from mmfs.stages.recompute import MODALITY_TABLES
from mmfs.stages.versions import FLOW_OFF, SEGMENTS_OFF, feature_versions, segments_version
from mmfs.store.db import Store
from mmfs.store.filters import in_list

__all__ = ["PreFailure", "hash_items"]  # kept importable from here (benchmarks, older callers)


def split_done(
    store: Store,
    pending: list[PendingItem],
    versions: dict[str, str],
    ledger: Ledger | None = None,
    fresh: Collection[str] = (),
    known: dict[str, dict[str, Any]] | None = None,
    max_attempts: int = 1,
) -> tuple[list[PendingItem], list[tuple[PendingItem, list[str]]]]:
    """Items to (re)process, and up-to-date items whose ledger row needs new uris or path stats.

    A stale item that was processed before recomputes only its stale tables (`PendingItem.only`);
    a new or failed item is processed whole, and so is a failed item whose failure can pass
    (`retry.retry_due`) while it has had fewer than `max_attempts` tries. `fresh` are the uris
    hashed afresh this run: an up-to-date item with one of them gets its stats recorded, so the
    next run reads it no more.
    """
    if known is None:
        known = (ledger or read_ledger(store)).known(store, [p.media_id for p in pending])
    failed = [media_id for media_id, k in known.items() if k["status"] == "failed"]
    again = retry_due(store, failed, max_attempts)
    todo, media_only = [], []
    seg_versions: dict[frozenset[str], str] = {}  # items share a handful of table sets
    for p in pending:
        item = known.get(p.media_id)
        stale = None if item is None else stale_tables(item, versions, seg_versions)
        if stale is None and p.media_id in again:
            stale = []  # a retryable failure: the whole item again
        if item is None or stale is not None:
            only = _with_absent(stale, item, versions) if stale and item is not None else None
            todo.append(dataclasses.replace(p, only=only))
        elif not set(p.uris) <= set(item["uris"]) or any(u in fresh for u in p.uris):
            media_only.append((p, sorted(set(item["uris"]) | set(p.uris))))
    return todo, media_only


def stale_tables(
    item: dict[str, Any], versions: dict[str, str], seg_versions: dict[frozenset[str], str] | None = None
) -> list[str] | None:
    """None when the item is up to date, else the tables whose rows a config change made stale.

    A failed item is retried when anything in the config changed (a raised limit, say); an ok item
    only when a table it has rows in carries another feature_version than this config gives.
    `seg_versions` memoises the segments version per set of tables across calls.
    """
    if item["status"] == "failed":
        return None if item["media_version"] == versions["media"] else []
    tables = item["tables"]
    expected = {t: versions[t] for t in tables if t in MODALITY_TABLES}
    if "segments" in tables or (expected and versions["segments"] != SEGMENTS_OFF):
        memo = {} if seg_versions is None else seg_versions  # none yet: made with segments off
        key = frozenset(tables)
        if key not in memo:
            memo[key] = segments_version(versions, tables)
        expected["segments"] = memo[key]
    stale = sorted(t for t, want in expected.items() if tables.get(t) != {want})
    return stale or None


def _with_absent(stale: list[str], item: dict[str, Any], versions: dict[str, str]) -> tuple[str, ...]:
    """A stale item also tries the audio and flow tables it has no rows in: they may have been
    switched off when it was made (`video.audio`, `flow.enabled`), and switching one back on makes
    the item's segments stale. An item without an audio track or a second frame computes nothing more."""
    absent = [t for t in ("audio", "flow") if t not in item["tables"] and versions[t] != FLOW_OFF]
    return (*stale, *absent)


class Ledger:
    """The `media` table read once (one scan, Arrow): the plan needs nothing else from the store.

    Each row records per table the feature_versions of the item's rows (`row_versions`) and the
    stats its paths had when hashed (`uri_stats`, the hash cache). Rows written before those columns
    existed (null `row_versions`) fall back to reading the feature tables, for those items only.
    """

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def cache(self) -> HashCache:
        """The hash cache of every path in the ledger."""
        if self.table.num_rows == 0 or "uri_stats" not in self.table.schema.names:
            return HashCache()
        stats = self.table.column("uri_stats").combine_chunks()
        ids = self.table.column("media_id").combine_chunks()
        flat = pc.list_flatten(stats)
        if len(flat) == 0:
            return HashCache()
        owners = pc.take(ids, pc.list_parent_indices(stats)).to_pylist()
        uris, sizes = flat.field("uri").to_pylist(), flat.field("size").to_pylist()
        mtimes, inodes = flat.field("mtime_ns").to_pylist(), flat.field("inode").to_pylist()
        entries = {
            u: (FileStat(s, m, i), owner)
            for u, s, m, i, owner in zip(uris, sizes, mtimes, inodes, owners, strict=True)
            if s is not None
        }
        return HashCache(entries)

    def cache_table(self) -> pa.Table:
        """The hash cache as columns: uri, size, mtime_ns, inode, media_id (one row per recorded path)."""
        schema = pa.schema(
            [("uri", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("inode", pa.int64())]
        ).append(pa.field("media_id", pa.string()))
        if self.table.num_rows == 0 or "uri_stats" not in self.table.schema.names:
            return schema.empty_table()
        stats = self.table.column("uri_stats").combine_chunks()
        flat = pc.list_flatten(stats)
        owners = pc.take(self.table.column("media_id").combine_chunks(), pc.list_parent_indices(stats))
        columns = [flat.field(n).cast(schema.field(n).type) for n in ("uri", "size", "mtime_ns", "inode")]
        table = pa.Table.from_arrays([*columns, owners], schema=schema)
        return table.filter(pc.is_valid(table.column("size")))

    def settled(self, ids: pa.Table, uris: pa.Array, versions: dict[str, str], fresh: pa.Array) -> pa.Array:
        """The media ids among `ids` that are surely up to date: nothing to do for them this run.

        An item is settled when its ledger row is `ok`/`degraded` with recorded `row_versions` that
        this config's versions leave unchanged (`stale_tables`, evaluated once per distinct value,
        not per item), every path it was found under now (`uris`, one per row of `ids`) is one the
        ledger records for it, and none of its paths was hashed afresh (`fresh`: their stats go into
        the ledger). Everything else goes through `split_done`, item by item.
        """
        cols = ("media_id", "status", "feature_version", "row_versions", "uris")
        if (
            self.table.num_rows == 0
            or ids.num_rows == 0
            or any(c not in self.table.schema.names for c in cols)
        ):
            return pa.array([], pa.string())
        wanted = pa.table({"media_id": pc.unique(ids.column("media_id"))})
        ledger = self.table.select(list(cols[:4]))
        rows = wanted.join(ledger, keys="media_id", join_type="inner", use_threads=False)
        rows = rows.filter(
            pc.and_(pc.is_valid(rows.column("row_versions")), pc.not_equal(rows.column("status"), "failed"))
        )
        if rows.num_rows == 0:
            return pa.array([], pa.string())
        recorded = pc.dictionary_encode(rows.column("row_versions").combine_chunks())
        memo: dict[frozenset[str], str] = {}
        up = []
        for text in recorded.dictionary.to_pylist():
            item = {"status": "ok", "tables": {t: set(v) for t, v in json.loads(text).items()}}
            up.append(stale_tables(item, versions, memo) is None)
        good = pc.take(pa.array(up, pa.bool_()), recorded.indices)
        ids_up = rows.column("media_id").filter(good)
        # paths not recorded for the item, and paths hashed afresh: the item's ledger row changes
        pairs = pa.table({"media_id": ids.column("media_id"), "uri": uris})
        stored = self.table.column("uris").combine_chunks()
        known = pa.table(
            {
                "media_id": pc.take(
                    self.table.column("media_id").combine_chunks(), pc.list_parent_indices(stored)
                ),
                "uri": pc.list_flatten(stored),
            }
        )
        new_paths = pairs.join(known, keys=["media_id", "uri"], join_type="left anti", use_threads=False)
        unsettled = pa.concat_arrays([new_paths.column("media_id").combine_chunks(), fresh.cast(pa.string())])
        return pc.filter(ids_up, pc.invert(pc.is_in(ids_up, value_set=unsettled))).combine_chunks()

    def known(self, store: Store, media_ids: list[str]) -> dict[str, dict[str, Any]]:
        """For the given items found in the ledger: status, uris, media version, versions per table."""
        if not media_ids or self.table.num_rows == 0:
            return {}
        wanted = pa.array(sorted(set(media_ids)), pa.string())
        cols = [c for c in _LEDGER_COLUMNS if c != "uri_stats" and c in self.table.schema.names]
        ledger = self.table.select(cols)
        rows = ledger.filter(pc.is_in(ledger.column("media_id"), value_set=wanted)).to_pylist()  # semi-join
        known: dict[str, dict[str, Any]] = {}
        legacy = []
        parsed: dict[str, dict[str, set[str]]] = {}  # most items share one `row_versions` text
        for r in rows:
            recorded = r.get("row_versions")
            if recorded and recorded not in parsed:
                parsed[recorded] = {t: set(v) for t, v in json.loads(recorded).items()}
            known[r["media_id"]] = {
                "status": r["status"],
                "uris": list(r["uris"] or []),
                "media_version": r["feature_version"],
                # shared between items: read, never changed (legacy items get their own dict)
                "tables": parsed[recorded] if recorded else {},
            }
            if recorded is None:
                legacy.append(r["media_id"])
        if legacy:
            _read_feature_versions(store, legacy, known)
        return known


_LEDGER_COLUMNS = ("media_id", "status", "uris", "feature_version", "row_versions", "uri_stats")


def read_ledger(store: Store) -> Ledger:
    """The ledger columns of the whole `media` table (empty when there is none)."""
    if not store.has("media"):
        return Ledger(pa.table({"media_id": pa.array([], pa.string())}))
    present = store.table("media").schema.names
    return Ledger(store.read("media", [c for c in _LEDGER_COLUMNS if c in present]))


def _read_feature_versions(store: Store, media_ids: list[str], known: dict[str, dict[str, Any]]) -> None:
    """Versions per table read from the feature tables (items whose ledger row predates `row_versions`)."""
    where = in_list("media_id", media_ids)
    for table in FEATURE_TABLES:
        if not store.has(table):
            continue
        for row in store.read(table, ["media_id", "feature_version"], where=where).to_pylist():
            if row["media_id"] in known:
                known[row["media_id"]]["tables"].setdefault(table, set()).add(row["feature_version"])


@dataclass
class Work:
    """What a run has to do with its inputs: the plan shared by `mmfs run` and `mmfs plan`."""

    todo: list[PendingItem]  # new, stale, or failed and due again
    media_only: list[tuple[PendingItem, list[str]]]  # up to date; its ledger row gains paths or stats
    known: dict[str, dict[str, Any]]  # the ledger's record of the items above that it has
    n_items: int  # distinct media ids among the readable inputs
    duplicates: int
    unreadable: list[PreFailure]
    stats: dict[str, FileStat]  # stats of the files hashed afresh

    @property
    def n_skipped(self) -> int:
        """Items with nothing to do."""
        return self.n_items - len(self.todo) - len(self.media_only)


def find_work(
    inputs: Inputs,
    cfg: PipelineConfig,
    store: Store,
    ledger: Ledger,
    *,
    rehash: bool = False,
    show_progress: bool = False,
) -> Work:
    """New, stale and up-to-date items, from the inputs' columns and the ledger.

    Cost: a few joins over the listing and the ledger (Arrow), plus per-item work for the items that
    are not surely up to date (`Ledger.settled`): those go through `split_done` as `PendingItem`s.
    """
    stats: dict[str, FileStat] = {}
    cache = None if rehash else ledger.cache_table()
    ids, unreadable = identify(inputs, cfg, cache, show_progress, stats, scratch=str(store.uri))
    uris = inputs.table.column("uri").take(ids.column("row"))
    n_items = len(pc.unique(ids.column("media_id")))
    fresh = ids.column("media_id").filter(pc.is_in(uris, value_set=pa.array(list(stats), pa.string())))
    settled = ledger.settled(ids, uris, feature_versions(cfg), fresh.combine_chunks())
    rest = ids.filter(pc.invert(pc.is_in(ids.column("media_id"), value_set=settled)))
    pending = _pending(inputs, rest)
    known = ledger.known(store, [p.media_id for p in pending])
    todo, media_only = split_done(
        store, pending, feature_versions(cfg), known=known, fresh=stats, max_attempts=cfg.limits.max_attempts
    )
    return Work(todo, media_only, known, n_items, ids.num_rows - n_items, unreadable, stats)


def _pending(inputs: Inputs, ids: pa.Table) -> list[PendingItem]:
    """`PendingItem`s of the given rows (by row order): one per media id, with all its uris."""
    rows = ids.column("row").to_pylist()
    items = inputs.items(rows)
    by_id: dict[str, PendingItem] = {}
    for item, media_id, n_bytes in zip(
        items, ids.column("media_id").to_pylist(), ids.column("n_bytes").to_pylist(), strict=True
    ):
        if media_id in by_id:
            by_id[media_id].uris.append(item.uri)
        else:
            by_id[media_id] = PendingItem(media_id, item, [item.uri], n_bytes)
    return list(by_id.values())


@dataclass
class Plan:
    """A dry run: what `mmfs run` would do with these paths and this config."""

    n_inputs: int = 0
    new: list[str] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)
    new_uris: list[str] = field(default_factory=list)
    up_to_date: int = 0
    duplicates: int = 0
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def make_plan(paths: list[str], cfg: PipelineConfig, store_uri: str | Path, *, rehash: bool = False) -> Plan:
    """Discover and hash the inputs and compare them with the store; decodes and writes nothing."""
    inputs, rejected = list_inputs(paths, cfg.sources, exclude=store_uri)
    check_arguments(paths, rejected)
    store = Store(store_uri, storage_options=cfg.store.storage_options)
    try:
        work = find_work(inputs, cfg, store, read_ledger(store), rehash=rehash)
    finally:
        release_workers()
    versions = feature_versions(cfg)
    known = work.known
    plan = Plan(n_inputs=len(inputs) + len(rejected), duplicates=work.duplicates)
    plan.unreadable = [{"uri": r.uri, "error": str(r.error)} for r in rejected]
    plan.unreadable += [{"uri": uri, "error": str(f.error)} for _, uri, f in work.unreadable]
    plan.new_uris = [
        uri for p, _ in work.media_only for uri in p.uris if uri not in known[p.media_id]["uris"]
    ]
    for p in work.todo:
        if p.media_id not in known:
            plan.new.append(p.item.uri)
        else:
            tables = stale_tables(known[p.media_id], versions) or ["media"]
            plan.stale.append({"uri": p.item.uri, "media_id": p.media_id, "tables": tables})
    # an item whose only change is a path's stats (hashed again, same bytes) is up to date for the plan
    refreshed = sum(1 for p, _ in work.media_only if set(p.uris) <= set(known[p.media_id]["uris"]))
    plan.up_to_date = work.n_skipped + refreshed
    return plan
