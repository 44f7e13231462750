"""The media ledger's record of what rows an item has: `media.row_versions`, read at commit time.

The planner compares it with a config's feature versions (`pipelines/plan.py`), so it is written with
each commit's `media` rows, from the feature rows those items have in the store by then.
"""

from __future__ import annotations

import json

from mmfs.store.db import Store
from mmfs.store.filters import in_list

FEATURE_TABLES = ("frames", "flow", "audio", "text", "segments")
_LOOKUP_CHUNK = 1000  # media ids per key lookup


def row_versions(store: Store, media_ids: list[str]) -> dict[str, str]:
    """Per item, its `media.row_versions`: the feature_versions of its rows in each feature table.

    Read after a commit's data tables landed, for that commit's items only (a key lookup each).
    """
    found: dict[str, dict[str, set[str]]] = {m: {} for m in media_ids}
    for start in range(0, len(media_ids), _LOOKUP_CHUNK):
        where = in_list("media_id", media_ids[start : start + _LOOKUP_CHUNK])
        for table in FEATURE_TABLES:
            if store.has(table):
                rows = store.current(table).search().where(where).select(["media_id", "feature_version"])
                for row in rows.limit(None).to_arrow().to_pylist():
                    found[row["media_id"]].setdefault(table, set()).add(row["feature_version"])
    return {
        m: json.dumps({t: sorted(v) for t, v in tables.items()}, sort_keys=True)
        for m, tables in found.items()
    }
