"""Search for the analyst page: typed filters in, hits with thumbnails and media names out.

`kind` is a typed equality on `segments.kind`; `source` (the folder an item came from) and the
duration bounds pick media ids from the `media` table in Python, which become a typed `IN` filter.
No string from a request is ever pasted into a query.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.errors import ConfigError
from mmfs.store.db import Store
from mmfs.store.hit_frames import hit_frame_indices

MODES = ("vector", "text", "hybrid")
_ENCODER_LOCK = threading.Lock()  # one query embedding at a time: encoders load once, lazily


@dataclass(frozen=True)
class Filters:
    """What the search form may narrow by; None means no condition."""

    kind: str | None = None
    source: str | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None

    def media_conditions(self) -> bool:
        """Whether any condition needs the `media` table."""
        return self.source is not None or self.min_duration_s is not None or self.max_duration_s is not None


def source_of(uri: str) -> str:
    """The folder an item came from (its "source" in filters and the composition summary)."""
    return str(Path(uri).parent)


def matching_media(store: Store, filters: Filters) -> set[str] | None:
    """Media ids that pass the source and duration conditions; None when there are none to apply."""
    if not filters.media_conditions():
        return None
    for bound in (filters.min_duration_s, filters.max_duration_s):
        if bound is not None and not math.isfinite(bound):
            raise ConfigError("duration bounds must be finite numbers")
    store.current("media")
    rows = store.read("media", ["media_id", "uri", "uris", "duration_s"]).to_pylist()
    chosen = set()
    for row in rows:
        duration = row["duration_s"] or 0.0  # images and documents: no duration, counted as 0 s
        sources = {source_of(u) for u in (row["uris"] or [row["uri"]])}
        if filters.source is not None and filters.source not in sources:
            continue
        if filters.min_duration_s is not None and duration < filters.min_duration_s:
            continue
        if filters.max_duration_s is not None and duration > filters.max_duration_s:
            continue
        chosen.add(row["media_id"])
    return chosen


def embed_query(
    store: Store, *, text: str | None = None, image: Path | None = None
) -> tuple[np.ndarray, str]:
    """The query vector and its default column, from the encoder the store's provenance names."""
    from mmfs.query import query_vector

    with _ENCODER_LOCK:
        return query_vector(store, text=text, image=image)


def search(
    store: Store,
    *,
    text: str | None = None,
    image: Path | None = None,
    mode: str = "vector",
    k: int = 10,
    filters: Filters | None = None,
    weights: str | None = None,
) -> list[dict[str, Any]]:
    """The top-k segments for a text or an image, each with name, thumbnail url and media page url."""
    from mmfs.store.search import search_segments, search_text_segments
    from mmfs.store.search_weighted import hybrid_search, parse_weights, text_weights, weighted_search

    filters = filters or Filters()
    if mode not in MODES:
        raise ConfigError(f"mode takes {', '.join(MODES)}, not {mode!r}")
    if not store.has("segments"):
        raise ConfigError(f"store {store.uri} has no segments yet; run `mmfs run` first")
    if image is None and not (text or "").strip():
        raise ConfigError("type a text or choose an image to search for")
    if image is not None and mode != "vector":
        raise ConfigError("an image is searched by vector only")
    where = [("kind", filters.kind)] if filters.kind else []
    media_ids = matching_media(store, filters)
    if media_ids is not None and not media_ids:
        return []
    if mode == "text":
        hits = search_text_segments(store, text or "", k=k, where=where, media_ids=media_ids)
    else:
        vector, column = embed_query(store, text=None if image else text, image=image)
        if mode == "hybrid":
            hits = hybrid_search(
                store, vector, text or "", k=k, where=where, column=column, media_ids=media_ids
            )
        elif image is None:  # a text: pictures, text and words, each weighted (store/search_weighted)
            given = text_weights(parse_weights(weights)) if weights else None
            hits = weighted_search(
                store, vector, text or "", k=k, where=where, media_ids=media_ids, weights=given
            )
        else:
            hits = search_segments(store, vector, column=column, k=k, where=where, media_ids=media_ids)
    return _decorate(store, [h.as_dict() for h in hits])


def _decorate(store: Store, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each hit's media name, thumbnail url (the frame inside its span) and media page url."""
    for hit, index in zip(hits, hit_frame_indices(store, hits), strict=True):
        hit["name"] = Path(hit["uri"]).name if hit["uri"] else hit["media_id"][:12]
        hit["thumbnail_url"] = None if index is None else f"/api/media/{hit['media_id']}/thumbnail/{index}"
        hit["media_url"] = f"/media/{hit['media_id']}"
        hit["text"] = hit.get("transcript") or hit.get("label_text") or ""
    return hits
