"""Indexes and search on a real LanceDB store: ANN recall, refresh, full text, hybrid, typed filters."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mmfs.errors import ConfigError
from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.indexes import ensure_indexes, index_recall, index_report
from mmfs.store.search import search_segments, search_text_segments
from mmfs.store.search_weighted import hybrid_search

DIMS = Dims(image=32, text=48, audio=16)
N_ROWS = 4000
N_CLUSTERS = 40
TOPICS = ("river", "mountain", "city", "forest", "desert", "ocean", "harbor", "valley")
EVIL = "x' OR 1=1 --"
BOTH = 1234  # the row whose transcript says "walrus" and whose vector is the query's nearest


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLUSTERS, dim))
    return _unit(centers[rng.integers(0, N_CLUSTERS, n)] + 0.35 * rng.normal(size=(n, dim)))


def _transcript(i: int) -> str | None:
    if i % 13 == 0:
        return None
    words = f"segment {i} about the {TOPICS[i % len(TOPICS)]}"
    if i == 77:
        words += " with a zebra"
    if i == BOTH or i in (5, 905, 1805, 2705, 3605):
        words += " and a walrus"
    return words


def _segments(start: int, n: int, seed: int = 0) -> pa.Table:
    fused = _vectors(start + n, DIMS.text, seed)[start:]
    visual = _vectors(start + n, DIMS.image, seed + 1)[start:]
    rows = [
        {
            "media_id": f"m{i // 10}",
            "segment_index": i % 10,
            "start_s": float(i % 10),
            "end_s": float(i % 10 + 1),
            "kind": "video" if i % 2 == 0 else "audio",
            "fused": None if i % 10 == 3 else fused[j].tolist(),  # absent modality: a null vector
            "visual": None if i % 4 == 1 else visual[j].tolist(),
            "text": fused[j].tolist(),
            "modalities": ["text"],
            "transcript": _transcript(i),
            "feature_version": "f1",
            "run_id": "r1",
        }
        for j, i in enumerate(range(start, start + n))
    ]
    return pa.Table.from_pylist(rows, schema=all_schemas(DIMS)["segments"])


def _text_rows() -> pa.Table:
    rows = [
        {
            "media_id": "m1",
            "segment_index": i,
            "source": "doc",
            "text": t,
            "feature_version": "f1",
            "run_id": "r1",
        }
        for i, t in enumerate(["a zebra crossing", "the quiet harbor"])
    ]
    return pa.Table.from_pylist(rows, schema=all_schemas(DIMS)["text"])


def _store(path: Path) -> Store:
    store = Store(path)
    store.ensure_tables(all_schemas(DIMS))
    store.write("segments", _segments(0, N_ROWS))
    store.write("text", _text_rows())
    return store


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = _store(tmp_path_factory.mktemp("indexed") / "store")
    report = ensure_indexes(store, min_rows=1000)
    assert report["segments.fused"]["action"] == "created"
    return store


def _key(i: int) -> tuple[str, int]:
    return (f"m{i // 10}", i % 10)


def _fused(i: int) -> np.ndarray:
    return _vectors(N_ROWS, DIMS.text, 0)[i]


def test_indexes_are_built_and_recall_is_measured(indexed: Store) -> None:
    report = index_report(indexed, n_queries=20)
    fused = report["segments"]["fused"]
    assert fused["type"] == "IVF_HNSW_SQ"
    assert fused["unindexed_rows"] == 0
    assert fused["recall_at_10"] >= 0.8
    assert index_recall(indexed, "visual", n_queries=20, seed=1) >= 0.8
    assert report["segments"]["transcript"]["type"] == "FTS"
    assert report["text"]["text"]["type"] == "FTS"
    assert "audio" not in report["segments"]  # every audio vector is null: nothing to index


def test_ensure_is_a_no_op_without_new_rows(indexed: Store) -> None:
    before = indexed.versions()
    report = ensure_indexes(indexed, min_rows=1000)
    assert indexed.versions() == before
    assert report["segments.fused"]["action"] == "fresh"
    assert report["segments.audio"]["action"] == "skipped"


def test_new_rows_refresh_then_kind_change_rebuilds(tmp_path: Path) -> None:
    store = _store(tmp_path / "store")
    assert ensure_indexes(store, min_rows=5000)["segments.fused"]["action"] == "skipped"
    ensure_indexes(store, min_rows=1000)
    store.write("segments", _segments(N_ROWS, 300, seed=0))
    assert index_report(store, n_queries=0)["segments"]["fused"]["unindexed_rows"] == 300
    version = store.versions()["segments"]
    report = ensure_indexes(store, min_rows=1000)
    assert report["segments.fused"]["action"] == "refreshed"
    assert report["segments.transcript"]["action"] == "refreshed"
    assert store.versions()["segments"] > version
    assert index_report(store, n_queries=0)["segments"]["fused"]["unindexed_rows"] == 0
    rebuilt = ensure_indexes(store, min_rows=1000, kind="IVF_PQ")
    assert rebuilt["segments.fused"]["action"] == "rebuilt"
    assert rebuilt["segments.fused"]["type"] == "IVF_PQ"
    assert index_recall(store, "fused", n_queries=20) >= 0.8


def test_vector_search_finds_itself_and_never_returns_null_vectors(indexed: Store) -> None:
    hits = search_segments(indexed, _fused(BOTH), k=300)
    assert (hits[0].media_id, hits[0].segment_index) == _key(BOTH)
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert len(hits) == 300
    assert all(h.segment_index != 3 for h in hits)  # i % 10 == 3 rows have no fused vector
    visual = search_segments(indexed, _vectors(N_ROWS, DIMS.image, 1)[8], column="visual", k=200)
    assert all((int(h.media_id[1:]) * 10 + h.segment_index) % 4 != 1 for h in visual)


def test_filters_apply_before_the_indexed_search(indexed: Store) -> None:
    hits = search_segments(indexed, _fused(BOTH), k=50, where=[("kind", "audio")])
    assert len(hits) == 50 and {h.kind for h in hits} == {"audio"}
    one = search_segments(indexed, _fused(BOTH), k=5, where=[("media_id", "m200"), ("segment_index", "7")])
    assert [(h.media_id, h.segment_index) for h in one] == [("m200", 7)]


def test_full_text_finds_the_word_and_nothing_else(indexed: Store) -> None:
    hits = search_text_segments(indexed, "zebra", k=10)
    assert [(h.media_id, h.segment_index) for h in hits] == [_key(77)]
    assert hits[0].modality == "transcript" and "zebra" in (hits[0].transcript or "")
    assert search_text_segments(indexed, "zebra", k=10, where=[("kind", "video")]) == []
    assert search_text_segments(indexed, "platypus", k=10) == []


def test_hybrid_ranks_the_row_matching_both_first(indexed: Store) -> None:
    query = _fused(BOTH) + 0.02 * np.random.default_rng(3).normal(size=DIMS.text).astype(np.float32)
    hits = hybrid_search(indexed, query, "walrus", k=10)
    assert (hits[0].media_id, hits[0].segment_index) == _key(BOTH)
    text_only = [h for h in hits[1:] if "walrus" in (h.transcript or "")]
    assert text_only  # rows found by their words alone are fused in beside the vector's neighbours
    assert hits[0].score > hits[1].score
    filtered = hybrid_search(indexed, query, "walrus", k=10, where=[("kind", "audio")])
    assert filtered and {h.kind for h in filtered} == {"audio"}


def test_hybrid_search_warns_nothing_and_prints_nothing(
    indexed: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    query = _fused(BOTH)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hits = hybrid_search(indexed, query, "walrus", k=3)
    out, err = capfd.readouterr()
    assert hits
    assert [str(w.message) for w in caught] == []
    assert "deprecat" not in (out + err).lower()


def test_hybrid_scores_tell_hits_apart_and_follow_the_order(indexed: Store) -> None:
    query = _fused(BOTH) + 0.02 * np.random.default_rng(3).normal(size=DIMS.text).astype(np.float32)
    hits = hybrid_search(indexed, query, "walrus", k=10)
    scores = [h.score for h in hits]
    assert (hits[0].media_id, hits[0].segment_index) == _key(BOTH)
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert len(set(scores[:3])) == 3  # RRF gave 1/61 to every hit first in one list: no information
    assert scores[0] > 0.9  # the best vector match that also holds the word scores near 1


@pytest.mark.parametrize("column", ["media_id", "kind", "transcript"])
def test_injection_matches_nothing_through_every_search(indexed: Store, column: str) -> None:
    where = [(column, EVIL)]
    assert search_segments(indexed, _fused(BOTH), k=10, where=where) == []
    assert search_text_segments(indexed, "walrus", k=10, where=where) == []
    assert hybrid_search(indexed, _fused(BOTH), "walrus", k=10, where=where) == []
    assert search_segments(indexed, np.ones(DIMS.image), column="visual", k=10, where=where) == []


def test_bad_requests_are_config_errors(indexed: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot filter on 'nope'"):
        search_text_segments(indexed, "walrus", where=[("nope", "1")])
    with pytest.raises(ConfigError, match="cannot search 'nope'"):
        hybrid_search(indexed, _fused(0), "walrus", column="nope")
    with pytest.raises(ConfigError, match="holds 32-d vectors"):
        search_segments(indexed, _fused(0), column="visual")
    with pytest.raises(ConfigError, match="no full-text index"):
        search_text_segments(_store(tmp_path / "bare"), "walrus")
    with pytest.raises(ConfigError, match="unknown vector index kind"):
        ensure_indexes(indexed, min_rows=1000, kind="FLAT")  # type: ignore[arg-type]
