"""Commits group encoder batches: many batches, one version per table; replace scopes still apply."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mmfs.schemas import Dims, all_schemas
from mmfs.stages.batch import DATA_TABLES, BatchResult, BatchTally
from mmfs.stages.commit import Committer
from mmfs.store.db import Store
from mmfs.store.filters import in_list

SCHEMAS = all_schemas(Dims(image=4, text=3, audio=2))


def _batch(ids: list[str], run_id: str = "r1", scoped: bool = False) -> BatchResult:
    media = [
        {"media_id": m, "uri": f"/d/{m}", "uris": [f"/d/{m}"], "kind": "text", "status": "ok"}
        | {"feature_version": "f", "run_id": run_id}
        for m in ids
    ]
    segments = [{"media_id": m, "segment_index": 0, "feature_version": "s", "run_id": run_id} for m in ids]
    tables = {name: SCHEMAS[name].empty_table() for name in DATA_TABLES}
    tables["segments"] = pa.Table.from_pylist(segments, schema=SCHEMAS["segments"])
    tables["media"] = pa.Table.from_pylist(media, schema=SCHEMAS["media"])
    scopes = {"segments": in_list("media_id", ids)} if scoped else {}
    return BatchResult(tables=tables, tally=BatchTally(n_ok=len(ids)), scopes=scopes)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "store")
    st.ensure_tables(SCHEMAS)
    return st


def test_many_batches_make_one_version_per_table(store: Store) -> None:
    before = store.versions()
    committer = Committer(store, max_rows=10_000, max_seconds=3600)
    for b in range(20):
        assert committer.add(_batch([f"m{b}-{i}" for i in range(4)])) == {}  # buffered, not committed
    written = committer.flush()
    after = store.versions()
    assert written["media"] == 80 and written["segments"] == 80
    assert committer.commits == 1
    assert {t: after[t] - before[t] for t in ("media", "segments", "frames")} == {
        "media": 1,
        "segments": 1,
        "frames": 0,
    }
    rows = store.read("media", ["media_id", "row_versions"]).to_pylist()
    assert len(rows) == 80 and all(r["row_versions"] == '{"segments": ["s"]}' for r in rows)


def test_a_full_buffer_commits_and_merged_scopes_replace_rows(store: Store) -> None:
    committer = Committer(store, max_rows=10, max_seconds=3600)
    assert committer.add(_batch(["a", "b"])) == {}
    assert committer.add(_batch(["c", "d", "e"]))["media"] == 5  # 10 rows buffered: due
    committer.add(_batch(["a", "b"], run_id="r2", scoped=True))
    committer.add(_batch(["c"], run_id="r2", scoped=True))
    committer.flush()
    runs = {r["media_id"]: r["run_id"] for r in store.read("segments", ["media_id", "run_id"]).to_pylist()}
    assert runs == {"a": "r2", "b": "r2", "c": "r2", "d": "r1", "e": "r1"}
    assert committer.commits == 2


def test_a_buffer_commits_by_bytes_before_it_has_enough_rows(store: Store) -> None:
    one = _batch(["a", "b"])
    size = sum(t.nbytes for t in one.tables.values())
    committer = Committer(store, max_rows=10_000, max_seconds=3600, max_bytes=2 * size)
    assert committer.add(one) == {}  # half the bytes: buffered
    assert committer.add(_batch(["c", "d"]))["media"] == 4  # the bytes bound is reached: committed
    assert committer.buffered_bytes == 0 and committer.commits == 1


@pytest.mark.parametrize("n_batches", [5, 50])
def test_rows_waiting_for_their_commit_are_staged_so_memory_holds_one_stage(
    store: Store, n_batches: int
) -> None:
    """However many batches one commit carries, the rows held in memory stay under `stage_bytes`
    plus one batch: the rest are uncommitted data files until the commit, which lands as one."""
    size = sum(t.nbytes for t in _batch(["m00-0", "m00-1"]).tables.values())  # every batch's size
    before = store.versions()
    committer = Committer(store, max_rows=10_000, max_seconds=3600, run_id="r", stage_bytes=3 * size)
    for b in range(n_batches):
        assert committer.add(_batch([f"m{b:02d}-0", f"m{b:02d}-1"])) == {}
    assert committer.stages == n_batches // 3 and committer.commits == 0
    assert store.versions() == before  # staged files are invisible until the commit
    written = committer.flush()
    assert written["media"] == written["segments"] == 2 * n_batches
    assert committer.max_held_bytes == 3 * size  # the bound, not the run's size
    after = store.versions()
    assert {t: after[t] - before[t] for t in ("media", "segments", "frames")} == {
        "media": 1,
        "segments": 1,
        "frames": 0,
    }
    assert store.count("segments") == 2 * n_batches
    assert not list((Path(store.uri) / ".mmfs-staged").glob("r/*"))  # every staged record removed
