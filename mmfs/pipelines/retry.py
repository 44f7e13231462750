"""Which failed items a run tries again: those whose failure can pass, until `limits.max_attempts`.

A failure's `retryable` flag comes from its error code (a timeout, a crashed decoder, a device out of
memory, a store conflict); `quarantine.attempts` counts the runs that met it. A failed item is tried
again while every one of its recorded failures is retryable and none has reached the limit; a
deterministic failure (a corrupt file) is tried once, as before.
"""

from __future__ import annotations

from mmfs.store.db import Store
from mmfs.store.filters import in_list


def retry_due(store: Store, failed_ids: list[str], max_attempts: int) -> set[str]:
    """The ids among `failed_ids` (items whose media row is `failed`) that a run should try again."""
    if not failed_ids or not store.has("quarantine"):
        return set()
    rows = store.read(
        "quarantine", ["media_id", "retryable", "attempts"], where=in_list("media_id", failed_ids)
    ).to_pylist()  # failed items only: a few rows, not the store
    verdict: dict[str, bool] = {}
    for row in rows:
        ok = bool(row["retryable"]) and int(row["attempts"] or 1) < max_attempts
        verdict[row["media_id"]] = verdict.get(row["media_id"], True) and ok
    return {media_id for media_id, due in verdict.items() if due}
