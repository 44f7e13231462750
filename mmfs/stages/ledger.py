"""The media ledger's record of what rows an item has: `media.row_versions`, read at commit time.

The planner compares it with a config's feature versions (`pipelines/plan.py`), so it is written with
each commit's `media` rows, from the feature rows those items have in the store by then.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from mmfs.schemas.rows import rows_to_table
from mmfs.store.db import Store
from mmfs.store.filters import in_list

FEATURE_TABLES = ("frames", "flow", "audio", "text", "segments")


def row_versions(store: Store, media_ids: list[str]) -> dict[str, str]:
    """Per item, its `media.row_versions`: the feature_versions of its rows in each feature table.

    Read after a commit's data tables landed, for that commit's items only: one key lookup per
    table (the `media_id` BTREE index), straight on the Lance dataset, grouped in Arrow.
    """
    wanted = pa.array(sorted(set(media_ids)), pa.string())
    found: dict[str, dict[str, list[str]]] = {m: {} for m in wanted.to_pylist()}
    for table in FEATURE_TABLES:
        if not store.has(table):
            continue
        dataset = store.lance_dataset(table)
        if dataset.count_rows() == 0:
            continue
        rows = dataset.to_table(
            columns=["media_id", "feature_version"], filter=pc.field("media_id").isin(wanted)
        )
        pairs = rows.group_by(["media_id", "feature_version"], use_threads=False).aggregate([])
        for media_id, version in zip(
            pairs.column("media_id").to_pylist(), pairs.column("feature_version").to_pylist(), strict=True
        ):
            found[media_id].setdefault(table, []).append(version)
    return {
        m: json.dumps({t: sorted(v) for t, v in tables.items()}, sort_keys=True)
        for m, tables in found.items()
    }


def with_row_versions(store: Store, media: pa.Table) -> pa.Table:
    """`media` rows with `row_versions` set from the feature rows their items now have in the store."""
    if media.num_rows == 0 or "row_versions" not in media.schema.names:
        return media
    found = row_versions(store, media.column("media_id").to_pylist())
    column = pa.array([found[m] for m in media.column("media_id").to_pylist()], pa.string())
    index = media.schema.get_field_index("row_versions")
    return media.set_column(index, media.schema.field(index), column)


def carry_attempts(store: Store, rows: pa.Table) -> pa.Table:
    """Quarantine rows that record a failure seen before: attempts counted up, first_seen kept."""
    if rows.num_rows == 0 or not store.has("quarantine") or not store.count("quarantine"):
        return rows
    ids = sorted(set(rows.column("media_id").to_pylist()))
    known = store.read(
        "quarantine", ["media_id", "stage", "attempts", "first_seen"], where=in_list("media_id", ids)
    )
    before = {(r["media_id"], r["stage"]): r for r in known.to_pylist()}
    if not before:
        return rows
    out = rows.to_pylist()
    for row in out:
        old = before.get((row["media_id"], row["stage"]))
        if old is not None:
            row["attempts"] = (old["attempts"] or 1) + 1
            row["first_seen"] = old["first_seen"] or row["first_seen"]
    return rows_to_table(out, rows.schema, "quarantine")
