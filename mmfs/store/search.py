"""Nearest-segment search over the `segments` table, with typed filters and the media uri joined in."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mmfs.errors import ConfigError
from mmfs.schemas import VECTOR_COLUMNS
from mmfs.store.db import Store
from mmfs.store.filters import equals_all, in_list


@dataclass(frozen=True)
class Hit:
    """One search result: which moment of which item, and how close."""

    media_id: str
    uri: str
    kind: str
    segment_index: int
    start_s: float | None
    end_s: float | None
    score: float  # cosine similarity, 1 = same direction
    modality: str  # the vector column searched
    modalities: list[str]
    transcript: str | None
    label_text: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def search_segments(
    store: Store,
    query: np.ndarray,
    *,
    column: str = "fused",
    k: int = 10,
    where: list[tuple[str, str]] | None = None,
) -> list[Hit]:
    """The k segments whose `column` vector is nearest (cosine) to `query`."""
    if column not in VECTOR_COLUMNS["segments"]:
        raise ConfigError(
            f"cannot search '{column}'; vector columns: {', '.join(VECTOR_COLUMNS['segments'])}"
        )
    table = store.table("segments")
    q = table.search(np.asarray(query, dtype=np.float32), vector_column_name=column).metric("cosine")
    expr = equals_all(table.schema, where or [])
    if expr is not None:
        q = q.where(expr, prefilter=True)
    cols = [
        "media_id",
        "segment_index",
        "start_s",
        "end_s",
        "kind",
        "modalities",
        "transcript",
        "label_text",
        "_distance",
    ]
    rows = q.select(cols).limit(k).to_arrow().to_pylist()
    uris = _uris(store, [r["media_id"] for r in rows])
    return [
        Hit(
            media_id=r["media_id"],
            uri=uris.get(r["media_id"], ""),
            kind=r["kind"] or "",
            segment_index=int(r["segment_index"]),
            start_s=r["start_s"],
            end_s=r["end_s"],
            score=round(1.0 - float(r["_distance"]), 6),
            modality=column,
            modalities=list(r["modalities"] or []),
            transcript=r["transcript"],
            label_text=r["label_text"],
        )
        for r in rows
    ]


def _uris(store: Store, media_ids: list[str]) -> dict[str, str]:
    if not media_ids:
        return {}
    rows = store.read("media", ["media_id", "uri"], where=in_list("media_id", set(media_ids)))
    return {r["media_id"]: r["uri"] for r in rows.to_pylist()}


def text_encoder_name(store: Store) -> str:
    """The text encoder that made the store's `fused` vectors (from the schema provenance)."""
    info = store.provenance("segments").get("fused", {})
    return str(info.get("name", "text.minilm"))
