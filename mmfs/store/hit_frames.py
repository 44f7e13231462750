"""Which stored frame shows a search hit, and its JPEG thumbnail: for `mmfs search` and the analysts' page.

A hit is a segment (a media item and a time span); the frame shown for it is the first sampled frame
inside the span, else the nearest one. The thumbnails are the JPEG bytes the pipeline stored on each
`frames` row (`image.thumbnail_size`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.store.db import Store
from mmfs.store.filters import in_list

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def frame_for_span(frames: list[dict[str, Any]], start_s: float | None, end_s: float | None) -> int | None:
    """The frame to show for a time span: the first inside it, else the nearest; None without frames."""
    if not frames:
        return None
    if start_s is None:
        return int(frames[0]["frame_index"])
    stop = end_s if end_s is not None and end_s > start_s else start_s
    inside = [f for f in frames if start_s <= f["t_s"] <= stop]
    if inside:
        return int(inside[0]["frame_index"])
    times = np.array([f["t_s"] for f in frames])
    return int(frames[int(np.argmin(np.abs(times - start_s)))]["frame_index"])


def hit_frame_indices(store: Store, hits: list[dict[str, Any]]) -> list[int | None]:
    """For each hit, the `frame_index` of the frame that shows it (None for items without frames)."""
    ids = sorted({h["media_id"] for h in hits})
    frames: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids and store.has("frames"):
        store.current("frames")
        for row in store.read(
            "frames", ["media_id", "frame_index", "t_s"], where=in_list("media_id", ids)
        ).to_pylist():
            frames[row["media_id"]].append(row)
    for mine in frames.values():
        mine.sort(key=lambda f: f["t_s"])
    return [frame_for_span(frames[h["media_id"]], h["start_s"], h["end_s"]) for h in hits]


def frame_thumbnail(store: Store, media_id: str, frame_index: int) -> bytes | None:
    """The stored JPEG thumbnail of one frame, or None (no such frame, or none was stored)."""
    return _thumbnails(store, [media_id], [frame_index]).get((media_id, int(frame_index)))


def _thumbnails(store: Store, media_ids: list[str], frame_indices: list[int]) -> dict[tuple[str, int], bytes]:
    """The stored thumbnails of these items' frames with these indices, in one read, by (media_id, index)."""
    if not media_ids or not store.has("frames"):
        return {}
    store.current("frames")
    where = f"{in_list('media_id', media_ids)} AND {in_list('frame_index', [int(i) for i in frame_indices])}"
    rows = store.read("frames", ["media_id", "frame_index", "thumbnail"], where=where).to_pylist()
    return {(r["media_id"], int(r["frame_index"])): r["thumbnail"] for r in rows if r["thumbnail"]}


def save_hit_thumbnails(store: Store, hits: list[dict[str, Any]], folder: Path) -> None:
    """Write each hit's thumbnail into `folder` as `<rank>-<item name>-<frame>.jpg` and set the hit's
    `thumbnail` to its path (None where the hit's item has no frames, such as audio or text)."""
    folder.mkdir(parents=True, exist_ok=True)
    indices = hit_frame_indices(store, hits)
    shown = [(h["media_id"], i) for h, i in zip(hits, indices, strict=True) if i is not None]
    jpegs = _thumbnails(store, sorted({m for m, _ in shown}), sorted({i for _, i in shown}))
    for rank, (hit, index) in enumerate(zip(hits, indices, strict=True), 1):
        jpeg = None if index is None else jpegs.get((hit["media_id"], index))
        if jpeg is None:
            hit["thumbnail"] = None
            continue
        name = _UNSAFE.sub("_", Path(hit["uri"] or hit["media_id"][:12]).stem)[:40]
        path = folder / f"{rank:02d}-{name}-{index}.jpg"
        path.write_bytes(jpeg)
        hit["thumbnail"] = str(path)
