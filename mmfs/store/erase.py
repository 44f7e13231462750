"""Erasure (GDPR): remove media items from every table and, on request, from the store's history.

A delete in Lance only marks rows deleted: older versions, and the data files they share, still hold
the bytes. `purge_history` therefore rewrites fragments that carry deletions (compaction), removes the
run tags that pin old versions, and deletes every old version, so no file under the store still holds
the erased rows. That ends rollback to any point before the erasure, which is the price of erasing.
"""

from __future__ import annotations

import re
import warnings
from datetime import timedelta
from typing import Any

from mmfs.errors import ConfigError, StoreError
from mmfs.schemas import KEYS, TABLES
from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.store.lock import refuse_if_writing

_MEDIA_ID = re.compile(r"(?:[0-9a-f]{64}|uri:.+)", re.DOTALL)
ERASABLE = tuple(t for t in TABLES if "media_id" in KEYS[t])  # tables with rows per item


def erase(store: Store, media_ids: list[str], *, purge_history: bool = False) -> dict[str, Any]:
    """Delete the items' rows from every table; with purge_history, from every old version too."""
    bad = [m for m in media_ids if not _MEDIA_ID.fullmatch(m)]
    if bad or not media_ids:
        raise ConfigError(
            f"not a media_id (64 hex digits, or uri:<path>): {', '.join(bad) or '(none given)'}"
        )
    where = in_list("media_id", media_ids)
    deleted: dict[str, int] = {}
    for table in ERASABLE:
        if not store.has(table):
            continue
        n = store.count(table, where)
        if n:
            store.table(table).delete(where)
            deleted[table] = n
    result: dict[str, Any] = {"deleted": deleted, "purged": False}
    if purge_history:
        refuse_if_writing(store.uri, "purge the history", store.storage_options)
        result["purged"] = True
        result["versions_removed"] = _purge(store)
    return result


def _purge(store: Store) -> int:
    """Drop the tags pinning old versions, then compact deletions away and delete every old version."""
    removed = 0
    for table in TABLES:  # the vocabulary's old versions may hold terms of erased items too
        if not store.has(table):
            continue
        tbl = store.table(table)
        try:
            for tag in list(tbl.tags.list()):
                tbl.tags.delete(tag)
            before = len(tbl.list_versions())
            with warnings.catch_warnings():
                # "removes every version except the latest": exactly what an erasure must do
                warnings.filterwarnings("ignore", message=r"optimize\(cleanup_older_than=0\)")
                tbl.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
            removed += max(0, before + 1 - len(tbl.list_versions()))
        except (OSError, RuntimeError, ValueError) as err:
            raise StoreError(f"purging the history of '{table}' failed: {err}") from err
    return removed
