"""Store maintenance: compact small fragments, remove versions past the retention, keep tagged ones.

Each run commits once per table per batch, so fragments and versions pile up; reading many small
fragments is slow and every version keeps its files. Versions tagged by runs (`pre-`/`run-`) are never
removed, so rollback keeps working; nothing runs while a pipeline holds the writer lock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from mmfs.store.db import Store, store_failure
from mmfs.store.lock import refuse_if_writing

log = logging.getLogger(__name__)


def maintain(store: Store, *, retention_days: float, min_fragments: int = 1) -> dict[str, Any]:
    """Compact and clean up every table with at least `min_fragments` fragments (or old versions)."""
    refuse_if_writing(store.uri, "maintain the store", store.storage_options)
    if retention_days == 0:
        log.warning("retention 0: every untagged old version goes; readers pinned to one will fail")
    report: dict[str, Any] = {}
    for name in store.table_names():
        table = store.table(name)
        fragments = len(table.to_lance().get_fragments())
        versions = len(table.list_versions())
        if fragments < min_fragments and not _has_expired(table, retention_days):
            continue
        try:
            _compact_and_clean(table, retention_days)
        except (OSError, RuntimeError, ValueError) as err:
            raise store_failure(f"maintenance of '{name}' failed", err) from err
        table.checkout_latest()
        report[name] = {
            "fragments": [fragments, len(table.to_lance().get_fragments())],
            "versions": [versions, len(table.list_versions())],
        }
    return report


def _compact_and_clean(table: Any, retention_days: float) -> None:
    """Lance-level compaction and cleanup: LanceDB's optimize() refuses when tags are old enough."""
    dataset = table.to_lance()
    if len(dataset.get_fragments()) > 1 or any(f.deletion_file() for f in dataset.get_fragments()):
        dataset.optimize.compact_files()
    if dataset.describe_indices():
        dataset.optimize.optimize_indices()
    dataset = table.to_lance()
    dataset.cleanup_old_versions(
        older_than=timedelta(days=retention_days), error_if_tagged_old_versions=False
    )


def _has_expired(table: Any, retention_days: float) -> bool:
    """Whether any version is older than the retention (then cleanup has something to do)."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    stamps = [v["timestamp"] for v in table.list_versions()[:-1]]
    return any((t if t.tzinfo else t.astimezone(UTC)) < cutoff for t in stamps)
