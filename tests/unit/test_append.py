"""Appending writes on a real LanceDB directory: new rows an Append, replaced rows in the same commit."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import pytest

from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.store.indexes import KEY_SEGMENTS_MAINTAIN, ensure_indexes, segments_to_merge
from mmfs.store.maintain import maintain

DIMS = Dims(image=4, text=3, audio=2)


def _segments(media_ids: list[str], per_item: int = 2, run_id: str = "r1") -> pa.Table:
    schema = all_schemas(DIMS)["segments"]
    rows = [
        {
            "media_id": m,
            "segment_index": i,
            "start_s": float(i),
            "end_s": float(i + 1),
            "kind": "video",
            "text": np.eye(3, dtype=np.float32)[i % 3].tolist(),
            "modalities": ["text"],
            "feature_version": "f1",
            "run_id": run_id,
        }
        for m in media_ids
        for i in range(per_item)
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _media(media_id: str, uris: list[str]) -> pa.Table:
    row = {"media_id": media_id, "uri": uris[0], "uris": uris, "kind": "text", "status": "ok"}
    row |= {"feature_version": "f1", "run_id": "r1"}
    return pa.Table.from_pylist([row], schema=all_schemas(DIMS)["media"])


def _operation(store: Store, name: str) -> str:
    """The Lance operation of the table's newest version (Append, Update, ...)."""
    dataset = store.current(name).to_lance()
    return type(dataset.read_transaction(dataset.version).operation).__name__


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "store")
    st.ensure_tables(all_schemas(DIMS))
    return st


def test_new_items_are_appended_without_touching_stored_fragments(store: Store) -> None:
    store.write("segments", _segments(["a", "b"]))
    fragments = store.current("segments").to_lance().get_fragments()
    before = {f.fragment_id: f.metadata.deletion_file for f in fragments}
    store.write("segments", _segments(["c"]))
    assert _operation(store, "segments") == "Append"
    after = store.current("segments").to_lance().get_fragments()
    assert {f.fragment_id: f.metadata.deletion_file for f in after if f.fragment_id in before} == before
    assert store.count("segments") == 6


def test_replaced_item_swaps_rows_in_one_commit(store: Store) -> None:
    store.write("segments", _segments(["a", "b"], per_item=3))
    v0 = store.versions()["segments"]
    store.write("segments", _segments(["a"], per_item=1, run_id="r2"), replace=in_list("media_id", ["a"]))
    assert store.versions()["segments"] == v0 + 1
    assert _operation(store, "segments") == "Update"
    rows = store.read("segments", ["media_id", "segment_index", "run_id"]).to_pylist()
    assert sorted((r["media_id"], r["segment_index"], r["run_id"]) for r in rows) == [
        ("a", 0, "r2"),
        ("b", 0, "r1"),
        ("b", 1, "r1"),
        ("b", 2, "r1"),
    ]
    # the version before the commit still holds the old rows only: never both, never neither
    old = lance.dataset(store.current("segments").to_lance().uri, version=v0)
    assert old.count_rows("media_id = 'a'") == 3


def test_rewriting_the_same_keys_without_scope_replaces_not_duplicates(store: Store) -> None:
    store.write("segments", _segments(["a"]))
    store.write("segments", _segments(["a"], run_id="r2"))
    assert store.count("segments") == 2
    assert set(store.read("segments", ["run_id"]).column("run_id").to_pylist()) == {"r2"}


def test_media_rows_keep_the_paths_of_the_row_they_replace(store: Store) -> None:
    store.write("media", _media("m", ["/x/a.txt"]))
    store.write("media", _media("m", ["/y/b.txt"]))
    rows = store.read("media", ["media_id", "uris"]).to_pylist()
    assert rows == [{"media_id": "m", "uris": ["/x/a.txt", "/y/b.txt"]}]


def test_concurrent_writers_of_the_same_keys_leave_one_row_each(store: Store) -> None:
    other = Store(store.uri)
    errors: list[BaseException] = []

    def write(st: Store, run_id: str) -> None:
        try:
            for _ in range(5):
                st.write("segments", _segments(["a", "b"], run_id=run_id))
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(st, r)) for st, r in ((store, "r1"), (other, "r2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count("segments") == 4


def test_key_lookup_uses_the_btree_once_built(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mmfs.store.indexes.KEY_INDEX_MIN_ROWS", 10)
    store.write("segments", _segments([f"m{i}" for i in range(10)]))
    report = ensure_indexes(store, min_rows=10**6)
    assert report["segments.media_id"]["action"] == "created"
    dataset = store.current("segments").to_lance()
    plan = dataset.scanner(filter=in_list("media_id", ["m1"]), with_row_address=True).explain_plan()
    assert "ScalarIndexQuery" in plan
    store.write("segments", _segments(["m1"], run_id="r2"))
    assert store.count("segments", "media_id = 'm1'") == 2
    assert ensure_indexes(store, min_rows=10**6)["segments.media_id"]["action"] == "refreshed"


def _key_segments(store: Store, name: str = "segments") -> list[Any]:
    dataset = store.current(name).to_lance()
    return next(d for d in dataset.describe_indices() if d.name == "media_id_idx").segments


def _runs(store: Store, runs: range) -> None:
    """Runs of 10 new items each, every one followed by the run's key-index refresh."""
    for run in runs:
        store.write("segments", _segments([f"r{run}-{i}" for i in range(10)], run_id=f"r{run}"))
        assert ensure_indexes(store, min_rows=10**6)["segments.media_id"]["action"] == "refreshed"


def _found(store: Store, keys: list[str]) -> list[str]:
    dataset = store.current("segments").to_lance()
    return sorted(
        dataset.to_table(columns=["media_id"], filter=in_list("media_id", keys)).column(0).to_pylist()
    )


def test_a_run_adds_one_key_index_segment_and_rewrites_none(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a run writes for the key index is its own rows' segment: the older segments stay as they
    were (same files), so a run's bytes do not depend on the store's size."""
    monkeypatch.setattr("mmfs.store.indexes.KEY_INDEX_MIN_ROWS", 10)
    store.write("segments", _segments([f"base{i}" for i in range(10)]))
    ensure_indexes(store, min_rows=10**6)
    for run in range(6):
        before = [str(s.uuid) for s in _key_segments(store)]
        _runs(store, range(run, run + 1))
        after = [str(s.uuid) for s in _key_segments(store)]
        assert after[: len(before)] == before and len(after) == len(before) + 1
    assert _found(store, ["base3", "r0-1", "r5-9"]) == ["base3", "base3", "r0-1", "r0-1", "r5-9", "r5-9"]


def test_maintenance_merges_key_index_segments_size_tiered(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past KEY_SEGMENTS_MAINTAIN segments, `maintain` merges the newest ones size-tiered: the index
    then has fewer segments, covers every fragment, finds every key, and a later run appends again."""
    monkeypatch.setattr("mmfs.store.indexes.KEY_INDEX_MIN_ROWS", 10)
    store.write("segments", _segments([f"base{i}" for i in range(10)]))
    ensure_indexes(store, min_rows=10**6)
    _runs(store, range(KEY_SEGMENTS_MAINTAIN))
    assert len(_key_segments(store)) == KEY_SEGMENTS_MAINTAIN + 1
    report = maintain(store, retention_days=7, compact="never")
    segments = _key_segments(store)
    assert report["segments"]["key_index"]["segments"] == [KEY_SEGMENTS_MAINTAIN + 1, len(segments)]
    assert len(segments) < KEY_SEGMENTS_MAINTAIN
    dataset = store.current("segments").to_lance()
    assert sum(len(s.fragment_ids) for s in segments) == len(dataset.get_fragments())  # every row indexed
    assert _found(store, ["base3", "r0-1", "r7-9"]) == ["base3", "base3", "r0-1", "r0-1", "r7-9", "r7-9"]
    _runs(store, range(100, 101))
    assert len(_key_segments(store)) == len(segments) + 1
    assert (
        maintain(store, retention_days=7, compact="never")["segments"].get("key_index", {}).get("merged", 0)
        == 0
    )


def test_a_run_merges_key_index_segments_only_at_the_cap(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store never maintained: runs keep the key index at KEY_SEGMENTS_MAX segments at most."""
    monkeypatch.setattr("mmfs.store.indexes.KEY_INDEX_MIN_ROWS", 10)
    monkeypatch.setattr("mmfs.store.indexes.KEY_SEGMENTS_MAX", 4)
    store.write("segments", _segments([f"base{i}" for i in range(10)]))
    ensure_indexes(store, min_rows=10**6)
    counts = []
    for run in range(8):
        _runs(store, range(run, run + 1))
        counts.append(len(_key_segments(store)))
    assert counts[:3] == [2, 3, 4] and max(counts) == 4
    assert _found(store, ["base0", "r3-3", "r7-0"]) == ["base0", "base0", "r3-3", "r3-3", "r7-0", "r7-0"]


@pytest.mark.parametrize(
    ("sizes", "merge"),
    [
        ([40, 20, 10, 10], 4),  # the newest rows carry up while the next segment is under twice them
        ([40, 20, 10], 0),  # each segment at least twice the next newer: nothing to merge
        ([8, 1, 1, 1], 3),  # runs' equal segments merge; the older one, 8 ≥ 2 × 3, stays
        ([33, 32, 31], 3),  # a staircase (merges that ran only now and then) merges whole
        ([8], 0),
        ([], 0),
    ],
)
def test_segments_to_merge_leaves_each_segment_twice_the_next(sizes: list[int], merge: int) -> None:
    assert segments_to_merge(sizes) == merge
    if merge:
        left = [*sizes[: len(sizes) - merge], sum(sizes[len(sizes) - merge :])]
        assert segments_to_merge(left) == 0
