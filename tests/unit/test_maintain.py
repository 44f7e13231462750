"""Maintenance compacts and cleans up but keeps tagged versions; the writer lock keeps it off live runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from mmfs.errors import StoreConflict
from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.lock import LOCK_NAME, active_writer, writer_lock
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
    report = maintain(store, retention_days=0, min_fragments=1)
    table = Store(tmp_path / "s").table("media")
    assert report["media"]["fragments"] == [12, 1]
    assert len(table.to_lance().get_fragments()) == 1 and table.count_rows() == 12
    versions = [v["version"] for v in table.list_versions()]
    assert 5 in versions and len(versions) < 13  # the tagged version survived, untagged ones went
    table.checkout(5)
    assert table.count_rows() == 4


def test_writer_lock_blocks_maintenance_and_stale_locks_are_ignored(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.ensure_tables(all_schemas(DIMS))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "s" / LOCK_NAME).write_text(str(sleeper.pid))
        assert active_writer(str(tmp_path / "s")) == sleeper.pid
        with pytest.raises(StoreConflict, match=str(sleeper.pid)):
            maintain(store, retention_days=0)
        with pytest.raises(StoreConflict), writer_lock(str(tmp_path / "s")):
            pass
    finally:
        sleeper.kill()
        sleeper.wait()
    assert active_writer(str(tmp_path / "s")) is None  # the holder died: the lock is stale
    with writer_lock(str(tmp_path / "s")):
        assert (tmp_path / "s" / LOCK_NAME).read_text() == str(__import__("os").getpid())
    assert not (tmp_path / "s" / LOCK_NAME).exists()
    maintain(store, retention_days=0)
