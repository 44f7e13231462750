"""What a partly recomputed item keeps: its other tables' rows read back, and each batch's replace scopes.

See `recompute` for the why. This half needs the store, so the decode workers never import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from mmfs.schemas.tables import MOTION_FEATURES
from mmfs.stages.analysis import STORED_ANALYSIS_COLUMNS, analysis_from_rows
from mmfs.stages.recompute import MODALITY_TABLES, StoredItem
from mmfs.store.db import Store
from mmfs.store.filters import in_list, sql_literal
from mmfs.transforms.align import SpanVector, TimedVectors


def load_stored(store: Store, items: dict[str, frozenset[str]]) -> dict[str, StoredItem]:
    """For each partly recomputed item (media_id → computed tables), its kept rows as align inputs."""
    if not items:
        return {}
    where = in_list("media_id", items)
    out = {media_id: StoredItem() for media_id in items}
    cols = ["media_id", "duration_s", "quality_flags", "error", "language", "language_confidence"]
    for row in store.read("media", cols, where).to_pylist():
        kept = out[row["media_id"]]
        kept.duration_s, kept.language = row["duration_s"], row["language"]
        kept.language_confidence = row["language_confidence"]
        kept.flags = list(row["quality_flags"] or [])
        kept.error_parts = [p for p in (row["error"] or "").split("; ") if p]
    if store.has("quarantine"):
        for row in store.read("quarantine", ["media_id", "stage"], where).to_pylist():
            out[row["media_id"]].failed_stages.add(row["stage"])
    wanted = {t: [m for m, computed in items.items() if t not in computed] for t in MODALITY_TABLES}
    _frames(store, wanted["frames"], out)
    _video_clips(store, wanted["frames"], out)
    _flow(store, wanted["flow"], out)
    _spans(store, "audio", wanted["audio"], out)
    _spans(store, "text", wanted["text"], out)
    return out


def _frames(store: Store, media_ids: list[str], out: dict[str, StoredItem]) -> None:
    cols = ["media_id", "t_s", "labels", "embedding", "label_embedding", *STORED_ANALYSIS_COLUMNS]
    for media_id, rows in _rows_by_item(store, "frames", cols, media_ids, "t_s"):
        out[media_id].tables.add("frames")
        times = np.array([r["t_s"] for r in rows], dtype=np.float64)
        out[media_id].frame_analysis, out[media_id].frame_times = analysis_from_rows(rows), times
        if all(r["embedding"] is not None for r in rows):
            out[media_id].inputs.visual = TimedVectors(times, _matrix(r["embedding"] for r in rows))
        if all(r["label_embedding"] is not None for r in rows):
            lines = [", ".join(r["labels"] or []) for r in rows]
            vectors = _matrix(r["label_embedding"] for r in rows)
            out[media_id].inputs.label_vectors = TimedVectors(times, vectors, lines)


def _video_clips(store: Store, media_ids: list[str], out: dict[str, StoredItem]) -> None:
    """The video encoder's pooled vectors of kept frames, back at their windows' middles (same grid)."""
    if not media_ids or not store.has("segments") or "video" not in store.table("segments").schema.names:
        return
    cols = ["media_id", "segment_index", "start_s", "end_s", "video"]
    for media_id, rows in _rows_by_item(store, "segments", cols, media_ids, "segment_index"):
        kept = [r for r in rows if r["video"] is not None and r["start_s"] is not None]
        if kept:
            mids = np.array([(r["start_s"] + r["end_s"]) / 2 for r in kept], dtype=np.float64)
            out[media_id].inputs.video = TimedVectors(mids, _matrix(r["video"] for r in kept))


def _flow(store: Store, media_ids: list[str], out: dict[str, StoredItem]) -> None:
    features = [n for n in MOTION_FEATURES if not n.startswith("orient_")]
    cols = list(dict.fromkeys(["media_id", "t_s", "dt_s", "orient_hist", *features]))
    for media_id, rows in _rows_by_item(store, "flow", cols, media_ids, "t_s"):
        out[media_id].tables.add("flow")
        mids = np.array([r["t_s"] + r["dt_s"] / 2 for r in rows], dtype=np.float64)
        vectors = np.array([_motion(r) for r in rows], dtype=np.float32)
        out[media_id].inputs.motion = TimedVectors(mids, vectors)


def _motion(row: dict[str, Any]) -> list[float]:
    """A flow row as its motion vector, in MOTION_FEATURES order (as `flow.motion_vector` does)."""
    return [
        float(row["orient_hist"][int(name.removeprefix("orient_"))])
        if name.startswith("orient_")
        else float(row[name])
        for name in MOTION_FEATURES
    ]


def _spans(store: Store, table: str, media_ids: list[str], out: dict[str, StoredItem]) -> None:
    index = "window_index" if table == "audio" else "segment_index"
    cols = ["media_id", index, "start_s", "end_s", "embedding", *(["text"] if table == "text" else [])]
    for media_id, rows in _rows_by_item(store, table, cols, media_ids, index):
        out[media_id].tables.add(table)
        spans = [
            SpanVector(
                r["start_s"],
                r["end_s"],
                None if r["embedding"] is None else np.asarray(r["embedding"], dtype=np.float32),
                r.get("text") or "",
            )
            for r in rows
        ]
        if table == "audio":
            out[media_id].inputs.audio = spans
        else:
            out[media_id].inputs.text = spans


def _rows_by_item(
    store: Store, table: str, cols: list[str], media_ids: list[str], order: str
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The rows of each item in a table, in `order`."""
    if not media_ids or not store.has(table):
        return []
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in store.read(table, cols, where=in_list("media_id", media_ids)).to_pylist():
        grouped.setdefault(row["media_id"], []).append(row)
    return [(m, sorted(rows, key=lambda r: r[order])) for m, rows in grouped.items()]


def _matrix(rows: Iterable[Any]) -> np.ndarray:
    return np.array([np.asarray(r, dtype=np.float32) for r in rows], dtype=np.float32)


def scope_clause(items: list[tuple[str, frozenset[str] | None]]) -> str | None:
    """A where-clause over (media_id, stages) pairs: all rows of an item (None) or those stages'."""
    whole = [m for m, stages in items if stages is None]
    parts = [in_list("media_id", whole)] if whole else []
    for media_id, stages in items:
        if stages is not None and stages:
            parts.append(f"(media_id = {sql_literal(media_id)} AND {in_list('stage', sorted(stages))})")
    return " OR ".join(f"({p})" for p in parts) if parts else None
