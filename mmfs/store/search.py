"""Search over the `segments` table: nearest vectors, full text, and both fused; typed filters only.

Filters are `lancedb.expr` expressions built from typed values (`filters.equals_all`) and applied
before the search (prefilter), so an indexed search still returns k rows that pass the filter.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from lancedb.query import FullTextOperator, MatchQuery

from mmfs.errors import ConfigError, ErrorCode, StoreError
from mmfs.schemas import VECTOR_COLUMNS
from mmfs.store.db import Store
from mmfs.store.filters import equals_all, in_list, one_of
from mmfs.store.indexes import vector_query

TEXT_COLUMN = "transcript"  # what full-text search matches in `segments`
_COLUMNS = [
    "media_id",
    "segment_index",
    "start_s",
    "end_s",
    "kind",
    "modalities",
    "transcript",
    "label_text",
]


@dataclass(frozen=True)
class Hit:
    """One search result: which moment of which item, and how close."""

    media_id: str
    uri: str
    kind: str
    segment_index: int
    start_s: float | None
    end_s: float | None
    score: float  # vector: cosine similarity (1 = same direction); text: BM25; fused: weighted mean, 0..1
    modality: str  # the vector column searched, "transcript", or the fused legs ("fused+words")
    modalities: list[str]
    transcript: str | None
    label_text: str | None
    why: dict[str, Any] | None = None  # per-modality scores, matched labels and words, time (search_explain)

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
    media_ids: Collection[str] | None = None,
) -> list[Hit]:
    """The k segments whose `column` vector is nearest (cosine) to `query`; rows without one never match."""
    _check_column(column)
    table = store.current("segments")
    _check_dim(table, column, query)
    query_builder = vector_query(table, query, column, k=k, where=_filter(table, where, media_ids))
    rows = _run(query_builder.select([*_COLUMNS, "_distance"]))
    return _hits(store, rows, column, lambda r: 1.0 - float(r["_distance"]), query_text=None)


def search_text_segments(
    store: Store,
    query_text: str,
    *,
    k: int = 10,
    where: list[tuple[str, str]] | None = None,
    media_ids: Collection[str] | None = None,
) -> list[Hit]:
    """The k segments whose transcript best matches the words of `query_text` (BM25)."""
    table = store.current("segments")
    _require_fts(table)
    query_builder = table.search(_match(query_text), query_type="fts").limit(k).select([*_COLUMNS, "_score"])
    expr = _filter(table, where, media_ids)
    if expr is not None:
        query_builder = query_builder.where(expr, prefilter=True)
    return _hits(store, _run(query_builder), TEXT_COLUMN, lambda r: float(r["_score"]), query_text=query_text)


def _check_column(column: str) -> None:
    """Refuse a vector column `segments` does not have."""
    if column not in VECTOR_COLUMNS["segments"]:
        raise ConfigError(
            f"cannot search '{column}'; vector columns: {', '.join(VECTOR_COLUMNS['segments'])}"
        )


def _match(query_text: str) -> MatchQuery:
    """Any of the words, matched exactly (after stemming) in the transcript: no query syntax to inject."""
    return MatchQuery(
        query_text,
        TEXT_COLUMN,
        boost=1.0,
        fuzziness=0,
        max_expansions=50,
        operator=FullTextOperator.OR,
        prefix_length=0,
        document_granularity=None,
    )


def _check_dim(table: Any, column: str, vector: np.ndarray) -> None:
    """Refuse a query vector of another width than the column's (another encoder made it)."""
    width = table.schema.field(column).type.list_size
    if np.asarray(vector).shape != (width,):
        raise ConfigError(
            f"segments.{column} holds {width}-d vectors; the query has shape {np.shape(vector)}"
        )


def _filter(table: Any, where: list[tuple[str, str]] | None, media_ids: Collection[str] | None = None) -> Any:
    """The typed filter for `key=value` pairs, AND `media_id` in `media_ids` when given; None if neither."""
    expr = equals_all(table.schema, where or [])
    if media_ids is None:
        return expr
    members = one_of(table.schema, "media_id", sorted(media_ids))
    return members if expr is None else (expr & members)


def has_fts(table: Any) -> bool:
    """Whether `segments.transcript` has its full-text index."""
    return any(list(c.columns) == [TEXT_COLUMN] for c in table.list_indices())


def _require_fts(table: Any) -> None:
    """Full-text search needs the index: say how to build it instead of a LanceDB error."""
    if not has_fts(table):
        raise ConfigError(
            "no full-text index on segments.transcript yet; build it with "
            "mmfs.store.indexes.ensure_indexes (`mmfs run` does after each run)"
        )


def _run(query_builder: Any) -> list[dict[str, Any]]:
    """Execute a query, translating LanceDB errors at the boundary."""
    try:
        return list(query_builder.to_arrow().to_pylist())
    except (OSError, RuntimeError, ValueError) as err:
        raise StoreError(f"search failed: {err}", code=ErrorCode.STORE_QUERY) from err


def _hits(
    store: Store, rows: list[dict[str, Any]], modality: str, score: Any, *, query_text: str | None
) -> list[Hit]:
    """Rows as hits, with each item's uri joined in from `media` and the reason each matched."""
    from mmfs.store.search_explain import why

    uris = _uris(store, [r["media_id"] for r in rows])
    return [
        Hit(
            media_id=r["media_id"],
            uri=uris.get(r["media_id"], ""),
            kind=r["kind"] or "",
            segment_index=int(r["segment_index"]),
            start_s=r["start_s"],
            end_s=r["end_s"],
            score=round(score(r), 6),
            modality=modality,
            modalities=list(r["modalities"] or []),
            transcript=r["transcript"],
            label_text=r["label_text"],
            why=why(r, {modality: round(score(r), 6)}, None, query_text),
        )
        for r in rows
    ]


def _uris(store: Store, media_ids: list[str]) -> dict[str, str]:
    if not media_ids:
        return {}
    rows = store.read("media", ["media_id", "uri"], where=in_list("media_id", set(media_ids)))
    return {r["media_id"]: r["uri"] for r in rows.to_pylist()}
