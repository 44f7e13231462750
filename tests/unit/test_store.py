"""The store on a real LanceDB directory: merge writes, typed filters, SQL, readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mmfs.errors import ConfigError, StoreError
from mmfs.schemas import KEYS, Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.filters import equals_all, in_list, parse_where, sql_literal
from mmfs.store.readers import FeatureDataset, to_polars
from mmfs.store.search import search_segments
from mmfs.store.sql import run_sql

DIMS = Dims(image=4, text=3, audio=2)


def _segments(n: int, run_id: str = "r1") -> pa.Table:
    schema = all_schemas(DIMS)["segments"]
    rows = []
    for i in range(n):
        vec = np.zeros(3, dtype=np.float32)
        vec[i % 3] = 1.0
        rows.append(
            {
                "media_id": f"m{i // 2}",
                "segment_index": i % 2,
                "start_s": float(i % 2),
                "end_s": float(i % 2 + 1),
                "kind": "video" if i % 2 == 0 else "audio",
                "text": vec.tolist(),
                "fused": vec.tolist() if i != 5 else None,
                "modalities": ["text"],
                "feature_version": "f1",
                "run_id": run_id,
            }
        )
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "store")
    st.ensure_tables(all_schemas(DIMS))
    return st


def test_tables_created_with_keys_in_metadata(store: Store) -> None:
    assert store.table_names() == [
        "media",
        "frames",
        "flow",
        "shots",
        "audio",
        "text",
        "segments",
        "quarantine",
        "vocabulary",
        "runs",
    ]
    meta = store.table("segments").schema.metadata
    assert meta[b"mmfs.keys"] == b'["media_id", "segment_index"]'
    schema = store.table("segments").schema
    marked = {
        f.name for f in schema if (f.metadata or {}).get(b"lance-schema:unenforced-primary-key") == b"true"
    }
    assert marked == {"media_id", "segment_index"}


def test_tables_made_without_the_primary_key_marker_are_migrated(tmp_path: Path) -> None:
    """Stores written before the key marker get it on the next ensure_tables, rows untouched."""
    old = {name: _unmarked(schema) for name, schema in all_schemas(DIMS).items()}
    store = Store(tmp_path / "old")
    store.ensure_tables(old)
    store.write("segments", _segments(6).cast(old["segments"]))
    assert not (store.table("segments").schema.field("media_id").metadata or {})
    again = Store(tmp_path / "old")
    again.ensure_tables(all_schemas(DIMS))
    for name, keys in KEYS.items():
        fields = again.table(name).schema
        assert all(
            fields.field(k).metadata == {b"lance-schema:unenforced-primary-key": b"true"} for k in keys
        ), name
    assert again.count("segments") == 6
    again.write("segments", _segments(6))  # the same keys again: updated, not duplicated
    assert again.count("segments") == 6
    version = again.table("media").version
    Store(tmp_path / "old").ensure_tables(all_schemas(DIMS))  # already marked: no new commit
    assert Store(tmp_path / "old").table("media").version == version


def test_a_struct_gains_the_fields_added_since_its_table_was_made(tmp_path: Path) -> None:
    """`text.pii_counts` without `card`/`iban` (stores before they existed): the next ensure_tables adds
    them as nulls to the old rows, in place; new rows then carry them, and the columns stay the same."""
    schemas = all_schemas(DIMS)
    text = schemas["text"]
    counts = text.field("pii_counts")
    old_counts = pa.struct([f for f in counts.type if f.name not in ("card", "iban")])
    old_text = pa.schema(
        [counts.with_type(old_counts) if f.name == "pii_counts" else f for f in text], metadata=text.metadata
    )
    store = Store(tmp_path / "old")
    store.ensure_tables({**schemas, "text": old_text})
    row = {"media_id": "m", "segment_index": 0, "source": "document", "text": "mail [EMAIL]"}
    row |= {"feature_version": "f", "run_id": "r"}
    store.write(
        "text",
        pa.Table.from_pylist(
            [{**row, "pii_counts": {"email": 1, "url": 0, "phone": 0, "person": 0}}], schema=old_text
        ),
    )
    again = Store(tmp_path / "old")
    again.ensure_tables(schemas)
    assert again.table("text").schema.field("pii_counts").type == counts.type
    assert again.table("text").schema.names == text.names
    (old_row,) = again.read("text").to_pylist()
    assert old_row["pii_counts"] == {
        "email": 1,
        "url": 0,
        "phone": 0,
        "person": 0,
        "card": None,
        "iban": None,
    }
    full = {"email": 0, "url": 0, "phone": 0, "person": 0, "card": 1, "iban": 1}
    again.write("text", pa.Table.from_pylist([{**row, "segment_index": 1, "pii_counts": full}], schema=text))
    assert {r["segment_index"]: r["pii_counts"]["card"] for r in again.read("text").to_pylist()} == {
        0: None,
        1: 1,
    }
    version = again.table("text").version
    Store(tmp_path / "old").ensure_tables(schemas)  # nothing missing: no new commit
    assert Store(tmp_path / "old").table("text").version == version


def _unmarked(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_metadata(None) for f in schema], metadata=schema.metadata)


def test_merge_write_is_idempotent_and_empty_write_is_skipped(store: Store) -> None:
    v0 = store.versions()["segments"]
    store.write("segments", _segments(6))
    store.write("segments", _segments(6, run_id="r2"))
    assert store.count("segments") == 6
    assert set(store.read("segments", ["run_id"]).column("run_id").to_pylist()) == {"r2"}
    v1 = store.versions()["segments"]
    assert store.write("segments", _segments(0)) is None
    assert store.versions()["segments"] == v1 == v0 + 2


def test_wider_vectors_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="3-d vectors"):
        store.ensure_tables(all_schemas(Dims(image=4, text=5, audio=2)))


def test_typed_filter_defeats_injection(store: Store) -> None:
    store.write("segments", _segments(6))
    schema = store.table("segments").schema
    evil = equals_all(schema, [("media_id", "x' OR 1=1 --")])
    assert store.table("segments").search().where(evil).to_arrow().num_rows == 0
    ok = equals_all(schema, [("media_id", "m1"), ("segment_index", "1")])
    rows = store.table("segments").search().where(ok).to_arrow().to_pylist()
    assert [(r["media_id"], r["segment_index"]) for r in rows] == [("m1", 1)]
    with pytest.raises(ConfigError, match="cannot filter on 'nope'"):
        equals_all(schema, [("nope", "1")])
    with pytest.raises(ConfigError, match="takes a int64 value"):
        equals_all(schema, [("segment_index", "1 OR 1=1")])


def test_string_filter_helper_quotes(store: Store) -> None:
    store.write("segments", _segments(6))
    assert sql_literal("it's") == "'it''s'"
    where = in_list("media_id", ["m0", "x' OR '1'='1"])
    store.table("segments").delete(where)
    assert sorted(set(store.read("segments", ["media_id"]).column("media_id").to_pylist())) == [
        "m1",
        "m2",
    ]
    with pytest.raises(ConfigError):
        in_list("media_id; DROP", ["a"])
    assert parse_where(["kind=video", "a=b=c"]) == [("kind", "video"), ("a", "b=c")]


def test_search_ranks_nearest_and_skips_null_vectors(store: Store) -> None:
    store.write("segments", _segments(6))
    hits = search_segments(store, np.array([0, 0, 1], dtype=np.float32), k=3)
    assert hits[0].score == pytest.approx(1.0)
    assert (hits[0].media_id, hits[0].segment_index) == (
        "m1",
        0,
    )  # i=2; i=5 has a null fused vector
    assert len([h for h in hits if h.score > 0.99]) == 1
    filtered = search_segments(store, np.array([1, 0, 0], dtype=np.float32), k=5, where=[("kind", "audio")])
    assert {h.kind for h in filtered} == {"audio"}


def test_sql_and_polars(store: Store, tmp_path: Path) -> None:
    store.write("segments", _segments(6))
    out = run_sql(store, "SELECT kind, count(*) AS n FROM segments GROUP BY kind ORDER BY kind")
    assert out.to_pylist() == [{"kind": "audio", "n": 3}, {"kind": "video", "n": 3}]
    with pytest.raises(ConfigError, match="SQL error"):
        run_sql(store, "SELECT nope FROM segments")
    frame = to_polars(str(tmp_path / "store"), "segments").collect()
    assert frame.height == 6


def test_feature_dataset_pins_version_and_shards(store: Store, tmp_path: Path) -> None:
    store.write("segments", _segments(4))
    store.write("segments", _segments(6))
    uri = str(tmp_path / "store")
    ds = FeatureDataset(uri, "segments", ["media_id", "segment_index", "fused"])
    rows = list(ds)
    assert len(rows) == 6
    assert any(r["fused"] is None for r in rows)
    assert all(r["fused"] is None or tuple(r["fused"].shape) == (3,) for r in rows)
    keys = [(r["media_id"], r["segment_index"]) for r in rows]
    shards = [
        [
            (r["media_id"], r["segment_index"])
            for r in FeatureDataset(
                uri,
                "segments",
                ["media_id", "segment_index"],
                rank=k,
                world_size=2,
                version=ds.version,
            )
        ]
        for k in range(2)
    ]
    assert sorted(shards[0] + shards[1]) == sorted(keys)
    assert not set(shards[0]) & set(shards[1])
    extra = _segments(8)
    store.write("segments", extra)
    assert len(list(ds)) == 6  # pinned: later writes are invisible


def test_columns_added_since_a_table_was_made_arrive_as_nulls(tmp_path: Path) -> None:
    schemas = all_schemas(DIMS)
    old = pa.schema(
        [f for f in schemas["quarantine"] if f.name != "detail"], metadata=schemas["quarantine"].metadata
    )
    store = Store(tmp_path / "old")
    store.ensure_tables({"quarantine": old})
    row = {"media_id": "uri:x", "stage": "read", "feature_version": "f", "run_id": "r"}
    store.write("quarantine", pa.Table.from_pylist([row], schema=old))
    again = Store(tmp_path / "old")
    again.ensure_tables({"quarantine": schemas["quarantine"]})
    assert "detail" in again.table("quarantine").schema.names
    assert again.read("quarantine").to_pylist()[0]["detail"] is None
    again.write("quarantine", pa.Table.from_pylist([{**row, "detail": "{}"}], schema=schemas["quarantine"]))
    assert again.read("quarantine").to_pylist()[0]["detail"] == "{}" and again.count("quarantine") == 1
