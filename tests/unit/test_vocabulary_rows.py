"""The corpus step on a real store: with `store.vocabulary_rows: run` a run rewrites its own rows only."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mmfs.config import config_from_dict
from mmfs.pipelines.corpus import update_vocabulary
from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store

DIMS = Dims(image=4, text=3, audio=2)


def _texts(run_id: str, docs: dict[str, str]) -> pa.Table:
    rows = [
        {
            "media_id": media_id,
            "segment_index": 0,
            "source": "document",
            "text": text,
            "tokens": text.split(),
            "feature_version": "t1",
            "run_id": run_id,
        }
        for media_id, text in docs.items()
    ]
    return pa.Table.from_pylist(rows, schema=all_schemas(DIMS)["text"])


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "store")
    st.ensure_tables(all_schemas(DIMS))
    st.write("text", _texts("r1", {"a": "owls hunt at night", "b": "bats hunt moths"}))
    return st


def _by_item(store: Store) -> dict[str, dict]:
    rows = store.read("text", ["media_id", "bow_indices", "tfidf", "vocab_version"]).to_pylist()
    return {r["media_id"]: r for r in rows}


def test_run_scope_rewrites_only_the_runs_rows_and_all_catches_up(store: Store) -> None:
    cfg = config_from_dict({"store": {"vocabulary_rows": "run"}})
    first = update_vocabulary(store, cfg, "r1")
    assert first["action"] == "fitted" and first["rows_updated"] == 2
    before = _by_item(store)

    store.write("text", _texts("r2", {"c": "zebras graze while owls sleep"}))
    second = update_vocabulary(store, cfg, "r2")
    assert second["action"] == "refit" and second["rows_updated"] == 1 and second["rows_lagging"] == 2
    after = _by_item(store)
    assert after["a"] == before["a"] and after["b"] == before["b"]  # earlier runs' rows untouched
    assert after["c"]["vocab_version"] == second["vocab_version"] != before["a"]["vocab_version"]

    caught_up = update_vocabulary(store, config_from_dict({}), "r3")
    assert caught_up["rows_updated"] == 2
    assert {r["vocab_version"] for r in _by_item(store).values()} == {second["vocab_version"]}


def test_all_scope_keeps_every_row_on_the_newest_vocabulary(store: Store) -> None:
    cfg = config_from_dict({})
    update_vocabulary(store, cfg, "r1")
    store.write("text", _texts("r2", {"c": "zebras graze"}))
    report = update_vocabulary(store, cfg, "r2")
    assert report["rows_updated"] == 3 and "rows_lagging" not in report
