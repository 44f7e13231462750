"""Maintenance compacts and cleans up but keeps tagged versions; the writer lock keeps it off live runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from mmfs.errors import StoreConflict
from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.lock import LEGACY_LOCK_NAME, WRITERS_DIR, active_writer, active_writers, writer_lock
from mmfs.store.maintain import maintain

DIMS = Dims(image=4, text=3, audio=2)


def _media_row(i: int) -> pa.Table:
    schema = all_schemas(DIMS)["media"]
    row = {
        "media_id": f"{i:064x}",
        "uri": f"/m/{i}",
        "kind": "image",
        "status": "ok",
        "feature_version": "f",
        "run_id": "r",
    }
    return pa.Table.from_pylist([row], schema=schema)


def test_compaction_and_cleanup_keep_tagged_versions(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.ensure_tables(all_schemas(DIMS))
    for i in range(12):
        store.write("media", _media_row(i))
    table = store.table("media")
    table.tags.create("run-keep", 5)
    assert len(table.to_lance().get_fragments()) == 12
    report = maintain(store, retention_days=0, min_fragments=1, compact="always")
    table = Store(tmp_path / "s").table("media")
    assert report["media"]["fragments"] == [12, 1]
    assert len(table.to_lance().get_fragments()) == 1 and table.count_rows() == 12
    versions = [v["version"] for v in table.list_versions()]
    assert 5 in versions and len(versions) < 13  # the tagged version survived, untagged ones went
    table.checkout(5)
    assert table.count_rows() == 4


def test_writers_block_maintenance_not_each_other_and_stale_entries_are_ignored(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.ensure_tables(all_schemas(DIMS))
    writers = tmp_path / "s" / WRITERS_DIR
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    legacy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        writers.mkdir()
        (writers / str(sleeper.pid)).write_text(str(sleeper.pid))
        (tmp_path / "s" / LEGACY_LOCK_NAME).write_text(str(legacy.pid))  # an older release's run
        assert active_writers(str(tmp_path / "s")) == sorted([sleeper.pid, legacy.pid])
        with pytest.raises(StoreConflict, match="is writing"):
            maintain(store, retention_days=0)
        with writer_lock(str(tmp_path / "s")):  # another run may write at the same time
            assert (writers / str(os.getpid())).is_file()
            assert os.getpid() not in active_writers(str(tmp_path / "s"))  # a run never blocks itself
    finally:
        for proc in (sleeper, legacy):
            proc.kill()
            proc.wait()
    assert active_writer(str(tmp_path / "s")) is None  # the writers died: their entries are stale
    with writer_lock(str(tmp_path / "s")):
        assert sorted(p.name for p in writers.iterdir()) == [str(os.getpid())]  # stale ones tidied
    assert not list(writers.iterdir())
    maintain(store, retention_days=0)


def _bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _tagged_store(root: Path) -> Store:
    """A store written in 12 commits, each tagged as a run's result (as `mmfs run` tags them)."""
    store = Store(root)
    store.ensure_tables(all_schemas(DIMS))
    for i in range(12):
        version = store.write("media", _media_row(i))
        store.table("media").tags.create(f"run-2026{i:02d}", version)
    return store


def test_default_maintenance_never_makes_the_store_bigger(tmp_path: Path) -> None:
    store = _tagged_store(tmp_path / "s")
    before = _bytes(tmp_path / "s")
    report = maintain(store, retention_days=7, min_fragments=1)
    assert report["media"]["compacted"] is False  # every run tag holds its fragments: nothing to free
    assert _bytes(tmp_path / "s") <= before
    assert Store(tmp_path / "s").count("media") == 12


def test_keep_runs_drops_old_rollback_points_and_reclaims(tmp_path: Path) -> None:
    store = _tagged_store(tmp_path / "s")
    before = _bytes(tmp_path / "s")
    report = maintain(store, retention_days=0, min_fragments=1, keep_runs=0)
    assert report["media"]["compacted"] is True and report["media"]["fragments"] == [12, 1]
    assert _bytes(tmp_path / "s") < before
    table = Store(tmp_path / "s").table("media")
    assert table.count_rows() == 12 and not [t for t in table.tags.list() if t.startswith("run-")]
