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
from mmfs.errors import EmptyFile, MediaError, MediaLimitExceeded
from mmfs.media.hashing import FileStat, HashCache, file_stat, sha256_file
from mmfs.pipelines.retry import retry_due
from mmfs.pipelines.sources import SourceItem, check_arguments, discover
from mmfs.runners.progress import Progress
from mmfs.stages.items import PendingItem, StageFailure
from mmfs.stages.ledger import FEATURE_TABLES
from mmfs.stages.recompute import MODALITY_TABLES
from mmfs.stages.remote import sha256_object
from mmfs.stages.versions import FLOW_OFF, SEGMENTS_OFF, feature_versions, segments_version
from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.store.objstore import is_object_uri

PreFailure = tuple[str, str, StageFailure]  # (quarantine key, uri, failure) of an input never hashed


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
    progress = Progress(len(items), "hashed", enabled=show_progress and len(items) > 50)
    for item in items:
        progress.advance(1)
        try:
            stat = None if is_object_uri(item.uri) else file_stat(item.path)
            n_bytes = check_size(item, cfg, stat)
            cached = cache.lookup(item.uri, stat) if cache is not None and stat is not None else None
            media_id = cached or _content_hash(item, cfg)
        except (OSError, MediaError) as err:
            error = err if isinstance(err, MediaError) else MediaError(f"{item.path.name}: {err}")
            unreadable.append((f"uri:{item.uri}", item.uri, StageFailure("read", error)))
            continue
        if stats is not None and stat is not None and cached is None:
            stats[item.uri] = stat
        if media_id in by_id:
            by_id[media_id].uris.append(item.uri)
            duplicates += 1
        else:
            by_id[media_id] = PendingItem(media_id, item, [item.uri], n_bytes)
    progress.close()
    return list(by_id.values()), unreadable, duplicates


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


def known_versions(store: Store, media_ids: list[str]) -> dict[str, dict[str, Any]]:
    """For items in the store: status, uris, media version, and per table the versions of its rows."""
    return read_ledger(store).known(store, media_ids)


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
    items, rejected = discover(paths, cfg.sources, exclude=store_uri)
    check_arguments(paths, rejected)
    store = Store(store_uri, storage_options=cfg.store.storage_options)
    ledger = read_ledger(store)
    cache = None if rehash else ledger.cache()
    pending, unreadable, duplicates = hash_items(items, cfg, show_progress=False, cache=cache)
    versions = feature_versions(cfg)
    known = ledger.known(store, [p.media_id for p in pending])
    todo, media_only = split_done(store, pending, versions, known=known, max_attempts=cfg.limits.max_attempts)
    plan = Plan(n_inputs=len(items) + len(rejected), duplicates=duplicates)
    plan.unreadable = [{"uri": r.uri, "error": str(r.error)} for r in rejected]
    plan.unreadable += [{"uri": uri, "error": str(f.error)} for _, uri, f in unreadable]
    plan.new_uris = [uri for p, _ in media_only for uri in p.uris if uri not in known[p.media_id]["uris"]]
    for p in todo:
        if p.media_id not in known:
            plan.new.append(p.item.uri)
        else:
            tables = stale_tables(known[p.media_id], versions) or ["media"]
            plan.stale.append({"uri": p.item.uri, "media_id": p.media_id, "tables": tables})
    plan.up_to_date = len(pending) - len(todo) - len(media_only)
    return plan
