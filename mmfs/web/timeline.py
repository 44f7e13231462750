"""One item's data for the media page: its probe row and what lies along its timeline.

Lookups take a `media_id` checked against the sha256 hex form first, and every filter is a quoted
literal built by `store.filters`, so nothing a client sends is pasted into a query.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.store.hit_frames import frame_thumbnail

MEDIA_ID = re.compile(r"^[0-9a-f]{64}$")
_BINARY_OR_VECTOR = {"thumbnail", "embedding", "label_embedding", "field", "log_mel", "mfcc"}


def valid_media_id(media_id: str) -> bool:
    """Whether `media_id` has the form of a stored id (64 lowercase hex digits)."""
    return bool(MEDIA_ID.match(media_id))


def _plain(value: Any) -> Any:
    """A JSON-able form of a store value (timestamps as ISO strings)."""
    return value.isoformat() if isinstance(value, datetime) else value


def media_row(store: Store, media_id: str) -> dict[str, Any] | None:
    """The item's `media` row (its probe data), or None when the id is malformed or absent."""
    if not valid_media_id(media_id) or not store.has("media"):
        return None
    store.current("media")
    rows = store.read("media", where=in_list("media_id", [media_id])).to_pylist()
    if not rows:
        return None
    row = {k: _plain(v) for k, v in rows[0].items()}
    row["name"] = Path(row["uri"]).name
    return row


def _rows(store: Store, table: str, media_id: str, columns: list[str], order: str) -> list[dict[str, Any]]:
    """The item's rows of one table (some columns), sorted by `order`; [] when the table is absent."""
    if not store.has(table):
        return []
    store.current(table)
    rows = store.read(table, columns, where=in_list("media_id", [media_id])).to_pylist()
    return sorted(rows, key=lambda r: (r[order] is None, r[order] or 0))


def timeline(store: Store, media_id: str) -> dict[str, Any]:
    """Frames, motion, loudness and text of one item, each with its time in seconds."""
    frames = _rows(store, "frames", media_id, ["frame_index", "t_s", "labels"], "t_s")
    flow = _rows(store, "flow", media_id, ["frame_index", "t_s", "dt_s", "mean_mag"], "t_s")
    audio = _rows(store, "audio", media_id, ["window_index", "start_s", "end_s", "rms"], "start_s")
    text = _rows(store, "text", media_id, ["segment_index", "source", "start_s", "end_s", "text"], "start_s")
    segments = _rows(
        store,
        "segments",
        media_id,
        ["segment_index", "start_s", "end_s", "modalities", "transcript"],
        "start_s",
    )
    return {
        "media_id": media_id,
        "frames": [
            {**f, "thumbnail_url": f"/api/media/{media_id}/thumbnail/{f['frame_index']}"} for f in frames
        ],
        # a flow pair's motion belongs to the middle of its two frames
        "motion": [{"t_s": f["t_s"] + (f["dt_s"] or 0.0) / 2, "mean_mag": f["mean_mag"]} for f in flow],
        "loudness": [{"t_s": (a["start_s"] + a["end_s"]) / 2, **a} for a in audio],
        "silent": bool(audio) and all(not a["rms"] for a in audio),  # a dark spectrogram is no bug
        "text": text,
        "segments": segments,
    }


def thumbnail(store: Store, media_id: str, frame_index: int) -> bytes | None:
    """The JPEG thumbnail of one frame, or None (also for a malformed media id)."""
    return frame_thumbnail(store, media_id, frame_index) if valid_media_id(media_id) else None


def log_mel_windows(store: Store, media_id: str) -> list[Any]:
    """The item's per-window log-mel blocks in time order (for the spectrogram image)."""
    rows = _rows(store, "audio", media_id, ["window_index", "start_s", "log_mel"], "start_s")
    return [r["log_mel"] for r in rows]
