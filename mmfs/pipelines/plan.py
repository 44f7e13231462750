"""What a run would do, decided before any decoding: hash, de-duplicate, and compare with the store.

`mmfs run` uses the same functions to choose its work; `mmfs plan` prints them as a dry run, with
the tables whose rows a config change made stale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmfs.config import PipelineConfig
from mmfs.errors import EmptyFile, MediaError, MediaLimitExceeded
from mmfs.media.hashing import sha256_file
from mmfs.pipelines.items import PendingItem, StageFailure
from mmfs.pipelines.progress import Progress
from mmfs.pipelines.remote import sha256_object
from mmfs.pipelines.rows import MODALITY_TABLES, feature_versions, segments_version
from mmfs.pipelines.sources import SourceItem, check_arguments, discover
from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.store.objstore import is_object_uri

PreFailure = tuple[str, str, StageFailure]  # (quarantine key, uri, failure) of an input never hashed
FEATURE_TABLES = ("frames", "flow", "audio", "text", "segments")


def hash_items(
    items: list[SourceItem], cfg: PipelineConfig, show_progress: bool
) -> tuple[list[PendingItem], list[PreFailure], int]:
    """Hash every item's bytes; merge items with the same bytes; collect unreadable ones."""
    by_id: dict[str, PendingItem] = {}
    unreadable: list[PreFailure] = []
    duplicates = 0
    progress = Progress(len(items), "hashed", enabled=show_progress and len(items) > 50)
    for item in items:
        progress.advance(1)
        try:
            n_bytes = check_size(item, cfg)
            media_id = _content_hash(item, cfg)
        except (OSError, MediaError) as err:
            error = err if isinstance(err, MediaError) else MediaError(f"{item.path.name}: {err}")
            unreadable.append((f"uri:{item.uri}", item.uri, StageFailure("read", error)))
            continue
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


def check_size(item: SourceItem, cfg: PipelineConfig) -> int:
    """The file's size; empty files and files over the byte limit are refused before hashing."""
    size = item.size if item.size is not None else item.path.stat().st_size
    if size == 0:
        raise EmptyFile(f"{item.path.name}: empty file (0 bytes)")
    if size > cfg.limits.max_bytes:
        raise MediaLimitExceeded(
            f"{item.path.name}: {size} bytes is over the limit of {cfg.limits.max_bytes}"
        )
    return size


def split_done(
    store: Store, pending: list[PendingItem], versions: dict[str, str]
) -> tuple[list[PendingItem], list[tuple[PendingItem, list[str]]]]:
    """Items to (re)process, and up-to-date items that only gained new uris.

    A stale item that was processed before recomputes only its stale tables (`PendingItem.only`);
    a new or failed item is processed whole.
    """
    known = known_versions(store, [p.media_id for p in pending])
    todo, media_only = [], []
    for p in pending:
        item = known.get(p.media_id)
        stale = None if item is None else stale_tables(item, versions)
        if item is None or stale is not None:
            p.only = tuple(stale) if stale else None
            todo.append(p)
        elif not set(p.uris) <= set(item["uris"]):
            media_only.append((p, sorted(set(item["uris"]) | set(p.uris))))
    return todo, media_only


def stale_tables(item: dict[str, Any], versions: dict[str, str]) -> list[str] | None:
    """None when the item is up to date, else the tables whose rows a config change made stale.

    A failed item is retried when anything in the config changed (a raised limit, say); an ok item
    only when a table it has rows in carries another feature_version than this config gives.
    """
    if item["status"] == "failed":
        return None if item["media_version"] == versions["media"] else []
    tables = item["tables"]
    expected = {t: versions[t] for t in tables if t in MODALITY_TABLES}
    if "segments" in tables:
        expected["segments"] = segments_version(versions, tables)
    stale = sorted(t for t, want in expected.items() if tables[t] != {want})
    return stale or None


def known_versions(store: Store, media_ids: list[str]) -> dict[str, dict[str, Any]]:
    """For items in the store: status, uris, media version, and per table the versions of its rows."""
    if not media_ids or not store.has("media"):
        return {}
    where = in_list("media_id", media_ids)
    cols = ["media_id", "status", "uris", "feature_version"]
    known: dict[str, dict[str, Any]] = {
        r["media_id"]: {
            "status": r["status"],
            "uris": list(r["uris"] or []),
            "media_version": r["feature_version"],
            "tables": {},
        }
        for r in store.read("media", cols, where=where).to_pylist()
    }
    for table in FEATURE_TABLES:
        if not store.has(table):
            continue
        for row in store.read(table, ["media_id", "feature_version"], where=where).to_pylist():
            if row["media_id"] in known:
                known[row["media_id"]]["tables"].setdefault(table, set()).add(row["feature_version"])
    return known


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


def make_plan(paths: list[str], cfg: PipelineConfig, store_uri: str | Path) -> Plan:
    """Discover and hash the inputs and compare them with the store; decodes and writes nothing."""
    items, rejected = discover(paths, cfg.sources, exclude=store_uri)
    check_arguments(paths, rejected)
    pending, unreadable, duplicates = hash_items(items, cfg, show_progress=False)
    store = Store(store_uri, storage_options=cfg.store.storage_options)
    versions = feature_versions(cfg)
    todo, media_only = split_done(store, pending, versions)
    plan = Plan(n_inputs=len(items) + len(rejected), duplicates=duplicates)
    plan.unreadable = [{"uri": r.uri, "error": str(r.error)} for r in rejected]
    plan.unreadable += [{"uri": uri, "error": str(f.error)} for _, uri, f in unreadable]
    plan.new_uris = [uri for p, _ in media_only for uri in p.uris]
    known = known_versions(store, [p.media_id for p in todo])
    for p in todo:
        if p.media_id not in known:
            plan.new.append(p.item.uri)
        else:
            tables = stale_tables(known[p.media_id], versions) or []
            plan.stale.append({"uri": p.item.uri, "media_id": p.media_id, "tables": tables})
    plan.up_to_date = len(pending) - len(todo) - len(media_only)
    return plan
