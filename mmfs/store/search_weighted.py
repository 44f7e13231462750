"""Weighted fusion of several search legs into one readable score, with the reason each hit came first.

A text query meets a segment through several modalities: its pictures (the `labels` column: the label
bridge or CLIP), its text (the `text` column: captions, transcripts, OCR) and its exact words (BM25 on
`transcript`). Each leg proposes candidates; every candidate then gets every leg's score (cosine
similarity from its stored vector, BM25 divided by the query's best BM25), and its score is the
weighted mean over the modalities it has: 1 means a perfect match in each, and the order follows it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from mmfs.errors import ConfigError
from mmfs.store.db import Store
from mmfs.store.indexes import vector_query
from mmfs.store.search import (
    _COLUMNS,
    TEXT_COLUMN,
    Hit,
    _check_column,
    _check_dim,
    _filter,
    _match,
    _require_fts,
    _run,
    _uris,
    has_fts,
)
from mmfs.store.search_explain import why

WORDS = "words"  # the full-text leg's modality name
# text-query modalities and the segments column each reads (WORDS: BM25 over `transcript`)
TEXT_QUERY_COLUMNS = {"visual": "labels", "text": "text", WORDS: TEXT_COLUMN}
# tuned on `make bench-search-quality` (docs/search.md): pictures first, then their text, words add a little
DEFAULT_WEIGHTS: dict[str, float] = {"visual": 1.0, "text": 0.5, WORDS: 0.25}
MIN_CANDIDATES = 100  # each leg proposes at least this many rows, so fusion sees past the first k


def parse_weights(spec: str, known: Collection[str] = tuple(TEXT_QUERY_COLUMNS)) -> dict[str, float]:
    """`visual=0.3,text=0.7` as a dict; unknown modalities and negative weights are refused."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in known:
            raise ConfigError(f"--weights takes modality=number pairs for {', '.join(known)}; got {part!r}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ConfigError(f"--weights: {value!r} is not a number (in {part!r})") from None
        if not np.isfinite(weights[name]) or weights[name] < 0:
            raise ConfigError(f"--weights: {name} must be a number >= 0, got {value!r}")
    if not weights:
        raise ConfigError(f"--weights takes modality=number pairs for {', '.join(known)}; got nothing")
    return weights


def text_weights(given: Mapping[str, float] | None) -> dict[str, float]:
    """The weights a text query uses: the defaults, each replaced by the one given (not all zero)."""
    weights = {**DEFAULT_WEIGHTS, **(given or {})}
    if sum(weights.values()) <= 0:
        raise ConfigError("--weights: give at least one modality a weight above 0")
    return weights


def weighted_search(
    store: Store,
    query_vector: np.ndarray,
    query_text: str,
    *,
    k: int = 10,
    where: list[tuple[str, str]] | None = None,
    media_ids: Collection[str] | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[Hit]:
    """The k segments with the best weighted mean of their pictures', text's and words' match to a text."""
    w = text_weights(weights)
    legs = {m: c for m, c in TEXT_QUERY_COLUMNS.items() if w.get(m, 0) > 0}
    return fused_search(store, query_vector, query_text, legs, w, k=k, where=where, media_ids=media_ids)


def fused_search(
    store: Store,
    query_vector: np.ndarray,
    query_text: str,
    legs: Mapping[str, str],
    weights: Mapping[str, float],
    *,
    k: int,
    where: list[tuple[str, str]] | None = None,
    media_ids: Collection[str] | None = None,
) -> list[Hit]:
    """Fuse the legs (modality -> vector column, or `transcript` for BM25) by weighted mean score."""
    table = store.current("segments")
    vector_cols = [c for c in legs.values() if c != TEXT_COLUMN]
    for column in vector_cols:
        _check_dim(table, column, query_vector)
    expr = _filter(table, where, media_ids)
    select = [*_COLUMNS, *dict.fromkeys(vector_cols)]
    depth = max(4 * k, MIN_CANDIDATES)
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for column in dict.fromkeys(vector_cols):
        query = vector_query(table, query_vector, column, k=depth, where=expr).select([*select, "_distance"])
        for r in _run(query):
            rows.setdefault((r["media_id"], r["segment_index"]), r)
    bm25 = _bm25(table, query_text, depth, expr, select) if TEXT_COLUMN in legs.values() else {}
    for key, (r, _) in bm25.items():
        rows.setdefault(key, r)
    best_bm25 = max((s for _, s in bm25.values()), default=0.0)
    scored = []
    for key, r in rows.items():
        leg_scores = _leg_scores(r, legs, query_vector, bm25.get(key, (None, 0.0))[1], best_bm25)
        scored.append((_mean(leg_scores, weights), key, r, leg_scores))
    scored.sort(key=lambda s: (-s[0], s[1]))
    top = scored[:k]
    uris = _uris(store, [r["media_id"] for _, _, r, _ in top])
    modality = "+".join(legs)
    return [
        _hit(r, uris, score, modality, why(r, leg_scores, weights, query_text))
        for score, _, r, leg_scores in top
    ]


def _bm25(
    table: Any, text: str, depth: int, expr: Any, select: list[str]
) -> dict[tuple[str, int], tuple[dict[str, Any], float]]:
    """Rows whose transcript holds the query's words, with their BM25 score (none without an index)."""
    if not text.strip() or not has_fts(table):
        return {}
    query = table.search(_match(text), query_type="fts").limit(depth).select([*select, "_score"])
    if expr is not None:
        query = query.where(expr, prefilter=True)
    return {(r["media_id"], r["segment_index"]): (r, float(r["_score"])) for r in _run(query)}


def _leg_scores(
    row: dict[str, Any], legs: Mapping[str, str], query: np.ndarray, bm25: float, best_bm25: float
) -> dict[str, float | None]:
    """Each leg's score for one row: cosine (None without the vector), or BM25 / the query's best BM25."""
    q = np.asarray(query, dtype=np.float64)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    out: dict[str, float | None] = {}
    for modality, column in legs.items():
        if column == TEXT_COLUMN:
            out[modality] = bm25 / best_bm25 if best_bm25 > 0 else 0.0  # no match is a 0, not a gap
            continue
        vec = row.get(column)
        if vec is None:
            out[modality] = None
            continue
        v = np.asarray(vec, dtype=np.float64)
        out[modality] = float(v @ q / max(float(np.linalg.norm(v)), 1e-12))
    return out


def _mean(scores: Mapping[str, float | None], weights: Mapping[str, float]) -> float:
    """Weighted mean of the scores present (negative cosines count as 0); 0 when none is present."""
    present = [(weights.get(m, 0.0), max(s, 0.0)) for m, s in scores.items() if s is not None]
    total = sum(w for w, _ in present)
    return sum(w * s for w, s in present) / total if total > 0 else 0.0


def _hit(r: dict[str, Any], uris: dict[str, str], score: float, modality: str, reason: dict[str, Any]) -> Hit:
    return Hit(
        media_id=r["media_id"],
        uri=uris.get(r["media_id"], ""),
        kind=r["kind"] or "",
        segment_index=int(r["segment_index"]),
        start_s=r["start_s"],
        end_s=r["end_s"],
        score=round(score, 6),
        modality=modality,
        modalities=list(r["modalities"] or []),
        transcript=r["transcript"],
        label_text=r["label_text"],
        why=reason,
    )


def hybrid_search(
    store: Store,
    query_vector: np.ndarray,
    query_text: str,
    *,
    k: int = 10,
    where: list[tuple[str, str]] | None = None,
    column: str = "fused",
    media_ids: Collection[str] | None = None,
    weights: dict[str, float] | None = None,
) -> list[Hit]:
    """The k segments ranked by the weighted mean of vector (`column`) similarity and transcript words.

    The score reads as a match from 0 to 1: cosine similarity, and BM25 over the query's best BM25
    (search_weighted), so a hit near in meaning that also holds the words scores near 1.
    """
    _check_column(column)
    _require_fts(store.current("segments"))
    legs = {column: column, WORDS: TEXT_COLUMN}
    w = {column: 1.0, WORDS: 1.0, **(weights or {})}
    return fused_search(store, query_vector, query_text, legs, w, k=k, where=where, media_ids=media_ids)
