"""Rows staged by a worker and committed by one committer: exactly once, and orphans swept by maintain.

A batch's rows are taken from a real run (fake encoders: this is about keys and files), staged into a
second store as a cluster worker would, and committed by the committer as Ray and Beam do. A commit
that dies after its first table, then a second try, lands every row once; a batch staged and never
committed (its run killed) leaves data files that `maintain` removes once they are older than the
grace period, and nothing any remaining version uses.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mmfs import faults
from mmfs.config import config_from_dict
from mmfs.pipelines.run import run_pipeline
from mmfs.schemas import KEYS
from mmfs.stages.batch import DATA_TABLES, LEDGER_TABLE, BatchResult, BatchTally
from mmfs.stages.staged import StagedBatch, commit_staged_batch, stage_batch
from mmfs.store.db import Store
from mmfs.store.fragments import STAGED_DIR, pending_records
from mmfs.store.maintain import maintain
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS

pytestmark = pytest.mark.slow
CFG = config_from_dict(
    {"runner": {"isolate_decode": False}, "video": {"fps": 2.0}, "encoders": FAKE_ENCODERS}
)
TABLES = (*DATA_TABLES, LEDGER_TABLE)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store written by a real local run: its rows are the batch the tests stage again."""
    root = tmp_path_factory.mktemp("staged")
    data = root / "data"
    data.mkdir()
    mf.write_image(data / "a.png", seed=3)
    mf.write_video(data / "clip.mp4", times_s=mf.constant_rate_times(30, 10), width=64, height=48)
    (data / "doc.txt").write_text("Harbour lights. A ferry leaves at dawn.")
    run_pipeline([str(data)], CFG, root / "store", show_progress=False)
    return Store(root / "store")


def _batch(source: Store) -> BatchResult:
    tables = {name: source.read(name) for name in TABLES}
    return BatchResult(tables=tables, tally=BatchTally(n_ok=tables[LEDGER_TABLE].num_rows))


def _target(source: Store, path: Path) -> Store:
    store = Store(path)
    store.ensure_tables({name: source.table(name).schema for name in TABLES})
    return store


def _keys(store: Store, name: str) -> list[tuple[object, ...]]:
    rows = store.read(name, KEYS[name]).to_pylist()
    return sorted(tuple(r[k] for k in KEYS[name]) for r in rows)


def _data_files(store: Store) -> set[Path]:
    return {p for p in Path(store.uri).glob("*.lance/data/*") if p.is_file()}


def test_a_commit_that_died_midway_then_again_lands_every_row_once(source: Store, tmp_path: Path) -> None:
    store = _target(source, tmp_path / "store")
    batch = _batch(source)
    staged = stage_batch(store, batch, "run-a")
    assert staged.staged["frames"].rows == source.count("frames") > 0
    assert len(pending_records(store)) == 1
    faults.ACTIVE[faults.Fault.AFTER_FRAGMENTS_BEFORE_COMMIT] = RuntimeError("killed after the first table")
    try:
        with pytest.raises(RuntimeError, match="killed after the first table"):
            commit_staged_batch(store, StagedBatch.from_row(staged.to_row()))
    finally:
        faults.ACTIVE.clear()
    assert store.count("frames") == source.count("frames") and store.count("media") == 0
    # the next run redoes the items (no ledger rows): staged afresh, committed once
    again = stage_batch(store, batch, "run-b")
    commit_staged_batch(store, StagedBatch.from_row(again.to_row()))
    for name in TABLES:
        assert _keys(store, name) == _keys(source, name), name
    assert [r["run_id"] for r in pending_records(store)] == ["run-a"]  # the died commit's record stays


def test_maintain_removes_a_killed_runs_files_and_nothing_a_version_uses(
    source: Store, tmp_path: Path
) -> None:
    store = _target(source, tmp_path / "store")
    batch = _batch(source)
    commit_staged_batch(store, stage_batch(store, batch, "run-1"))
    first = store.versions()
    commit_staged_batch(store, stage_batch(store, batch, "run-2"))  # replaces run-1's rows by key
    committed = _data_files(store)
    killed = stage_batch(store, batch, "run-3")  # written, never committed: the run was killed
    orphans = _data_files(store) - committed
    assert len(orphans) == sum(len(s.files) for s in killed.staged.values()) > 0
    assert [r["run_id"] for r in pending_records(store)] == ["run-3"]

    young = maintain(store, retention_days=7, compact="never", orphan_grace_s=3600)
    assert not any(r.get("orphans") for r in young.values())  # younger than the grace: kept
    assert orphans <= _data_files(store)

    report = maintain(store, retention_days=7, compact="never", orphan_grace_s=0)
    assert sum(r.get("orphans", 0) for r in report.values()) == len(orphans)
    assert _data_files(store) == committed
    assert pending_records(store) == [] and not any((Path(store.uri) / STAGED_DIR).rglob("*.json"))
    for name in TABLES:  # the live rows, and the version run-1 left (kept by the retention), still read
        assert _keys(store, name) == _keys(source, name), name
        old = store.table(name).to_lance().checkout_version(first[name]).to_table()
        assert isinstance(old, pa.Table) and old.num_rows == source.count(name), name
