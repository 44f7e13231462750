"""Store maintenance: remove versions past the retention, compact fragments when that frees space.

What the retention keeps: every version tagged by a run (`pre-`/`run-`, so `mmfs rollback` works) and
every untagged version younger than `retention_days`; each kept version keeps its data files. So
compaction, which rewrites live rows into new files, makes a store *bigger* while a kept version
still points at the old files. By default (`compact="reclaim"`) maintenance therefore compacts a
table only when no kept version other than the newest shares its fragments, and then drops the
version compaction superseded at once: the store never grows. `compact="always"` compacts anyway
(faster reads; the old files go when their versions expire). To reclaim space now, drop old run tags
and untagged history: `mmfs maintain --keep-runs N --retention-days 0` keeps the rollback points of
the last N runs only, then compacts what no kept version holds. Nothing runs while a pipeline holds
the writer lock.

Key indexes: each run adds its rows to a table's `media_id` BTREE as a new segment and rewrites none
(a run's cost stays constant); maintenance merges the segments size-tiered once there are more than
`indexes.KEY_SEGMENTS_MAINTAIN`, since every commit's key lookup probes each one. The merged-away
segments are files of older versions: they go with those versions, by the retention.

Orphans: a run killed between its workers writing data files and the commit that references them
(`store.fragments`) leaves files no version uses. Maintenance deletes the data files that no
remaining version references once they are older than `orphan_grace_s` (an hour by default: a live
run's files are younger, and its batches commit every `runner.commit_seconds`).
"""

from __future__ import annotations

import logging
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from mmfs.store.db import Store, store_failure
from mmfs.store.fragments import sweep_orphans
from mmfs.store.indexes import KEY_INDEXED, merge_key_index
from mmfs.store.lock import refuse_if_writing

log = logging.getLogger(__name__)

CompactMode = Literal["reclaim", "always", "never"]
_RUN_TAG_PREFIXES = ("pre-", "run-")


def maintain(
    store: Store,
    *,
    retention_days: float,
    min_fragments: int = 1,
    compact: CompactMode = "reclaim",
    keep_runs: int | None = None,
    orphan_grace_s: float = 3600.0,
) -> dict[str, Any]:
    """Clean up, then compact (by `compact`) every table with at least `min_fragments` fragments.

    `keep_runs`: first drop the run tags of all but the newest `keep_runs` runs (their versions then
    go like untagged ones). Last, data files of batches never committed (a killed run's) that are
    older than `orphan_grace_s` are deleted; each table's entry counts them under `orphans`.
    """
    refuse_if_writing(store.uri, "maintain the store", store.storage_options)
    if retention_days == 0:
        log.warning("retention 0: every untagged old version goes; readers pinned to one will fail")
    report: dict[str, Any] = {}
    for name in store.table_names():
        table = store.table(name)
        fragments = len(table.to_lance().get_fragments())
        versions = len(table.list_versions())
        dropped = _drop_old_run_tags(table, keep_runs) if keep_runs is not None else 0
        keyed = _merge_key_index(table, name)
        if fragments < min_fragments and not dropped and not _has_expired(table, retention_days):
            if keyed and keyed["merged"]:
                report[name] = {
                    "fragments": [fragments, fragments],
                    "versions": [versions, len(table.list_versions())],
                    "compacted": False,
                    "key_index": keyed,
                }
            continue
        try:
            compacted = _clean_and_compact(table, retention_days, fragments >= min_fragments, compact)
        except (OSError, RuntimeError, ValueError) as err:
            raise store_failure(f"maintenance of '{name}' failed", err) from err
        table.checkout_latest()
        report[name] = {
            "fragments": [fragments, len(table.to_lance().get_fragments())],
            "versions": [versions, len(table.list_versions())],
            "compacted": compacted,
        }
        if keyed:
            report[name]["key_index"] = keyed
    _sweep(store, orphan_grace_s, report)
    return report


def _merge_key_index(table: Any, name: str) -> dict[str, Any] | None:
    """Merge the segments runs added to the table's `media_id` BTREE, once there are too many."""
    return merge_key_index(table) if name in KEY_INDEXED else None


def _sweep(store: Store, grace_s: float, report: dict[str, Any]) -> None:
    """Remove orphan data files; count them per table in `report` (adding tables maintenance skipped)."""
    try:
        swept = sweep_orphans(store, grace_s)
    except (OSError, RuntimeError, ValueError) as err:
        raise store_failure("removing orphan data files failed", err) from err
    for name, done in swept["tables"].items():
        if name not in report:
            table = store.table(name)
            n_fragments, n_versions = len(table.to_lance().get_fragments()), len(table.list_versions())
            report[name] = {
                "fragments": [n_fragments, n_fragments],
                "versions": [n_versions, n_versions],
                "compacted": False,
            }
        report[name]["orphans"] = done["files"]
        report[name]["orphan_bytes"] = done["bytes"]
    if swept["runs"]:
        log.info("staged batches of runs %s were never committed: their files are gone", swept["runs"])


def _clean_and_compact(table: Any, retention_days: float, due: bool, mode: CompactMode) -> bool:
    """Remove expired versions; compact when due and `mode` allows it. Whether it compacted."""
    _cleanup(table, timedelta(days=retention_days))
    dataset = table.to_lance()
    needs = len(dataset.get_fragments()) > 1 or any(f.deletion_file() for f in dataset.get_fragments())
    if not due or not needs or mode == "never":
        return False
    held = _held_elsewhere(table)
    if mode == "reclaim" and held:
        log.info("compaction of '%s' deferred: kept versions hold %d of its fragments", table.name, held)
        return False
    dataset.optimize.compact_files()
    if dataset.describe_indices():
        dataset.optimize.optimize_indices()
    # reclaim: nothing but the newest version held these files, so the version compaction superseded
    # goes now (else the old files would outlive it by the retention and the store would grow)
    _cleanup(table, timedelta(0) if mode == "reclaim" else timedelta(days=retention_days))
    return True


def _cleanup(table: Any, older_than: timedelta) -> None:
    """Delete untagged versions older than `older_than` and the files only they used."""
    table.checkout_latest()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*cleanup.*")
        table.to_lance().cleanup_old_versions(older_than=older_than, error_if_tagged_old_versions=False)
    table.checkout_latest()


def _held_elsewhere(table: Any) -> int:
    """How many of the newest version's fragments another remaining version also uses (files shared)."""
    dataset = table.to_lance()
    live = {(f.fragment_id, _deletion(f)) for f in dataset.get_fragments()}
    held: set[tuple[int, str | None]] = set()
    for version in table.list_versions()[:-1]:
        old = dataset.checkout_version(version["version"])
        held |= live & {(f.fragment_id, _deletion(f)) for f in old.get_fragments()}
    return len({fid for fid, _ in held})


def _deletion(fragment: Any) -> str | None:
    """The fragment's deletion file path (None: no deletions)."""
    deletion = fragment.deletion_file()
    return None if deletion is None else str(deletion)


def _drop_old_run_tags(table: Any, keep_runs: int) -> int:
    """Delete the `pre-`/`run-` tags of all but the newest `keep_runs` runs; how many went."""
    tags = [t for t in table.tags.list() if t.startswith(_RUN_TAG_PREFIXES)]
    runs = sorted({t.split("-", 1)[1] for t in tags})  # run ids sort by start time
    keep = set(runs[-keep_runs:]) if keep_runs > 0 else set()
    doomed = [t for t in tags if t.split("-", 1)[1] not in keep]
    for tag in doomed:
        table.tags.delete(tag)
    return len(doomed)


def _has_expired(table: Any, retention_days: float) -> bool:
    """Whether any version is older than the retention (then cleanup has something to do)."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    stamps = [v["timestamp"] for v in table.list_versions()[:-1]]
    return any((t if t.tzinfo else t.astimezone(UTC)) < cutoff for t in stamps)
