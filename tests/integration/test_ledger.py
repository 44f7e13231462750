"""Planning from the `media` ledger alone: cached hashes of unchanged files, versions per table in the row."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pytest

from mmfs.config import PipelineConfig
from mmfs.media.hashing import file_stat
from mmfs.pipelines.plan import make_plan, read_ledger
from mmfs.schemas import Dims, all_schemas
from mmfs.stages.versions import feature_versions
from mmfs.store.db import Store

DIMS = Dims(image=4, text=3, audio=2)
N_FILES, FILE_BYTES = 40, 256 * 1024


def _rchar() -> int:
    """Bytes this process has read through read() calls so far (/proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _ledger_rows(files: list[Path], media_version: str) -> pa.Table:
    rows = []
    for path in files:
        uri = str(path.resolve())
        rows.append(
            {
                "media_id": hashlib.sha256(path.read_bytes()).hexdigest(),
                "uri": uri,
                "uris": [uri],
                "kind": "text",
                "status": "ok",
                "feature_version": media_version,
                "run_id": "r0",
                "row_versions": json.dumps({}),
                "uri_stats": [file_stat(path).as_row(uri)],
            }
        )
    return pa.Table.from_pylist(rows, schema=all_schemas(DIMS)["media"])


@pytest.fixture
def stored(tmp_path: Path) -> tuple[list[Path], Path]:
    data = tmp_path / "data"
    data.mkdir()
    files = []
    for i in range(N_FILES):
        path = data / f"note_{i:03d}.txt"
        path.write_bytes((f"note {i} " * (FILE_BYTES // 8))[:FILE_BYTES].encode())
        files.append(path)
    store_dir = tmp_path / "store"
    store = Store(store_dir)
    store.ensure_tables(all_schemas(DIMS))
    store.write("media", _ledger_rows(files, feature_versions(PipelineConfig())["media"]))
    return files, store_dir


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs /proc/self/io")
def test_a_no_op_plan_reads_no_input_bytes_and_rehash_reads_them_all(stored: tuple[list[Path], Path]) -> None:
    files, store_dir = stored
    total = N_FILES * FILE_BYTES
    before = _rchar()
    plan = make_plan([str(files[0].parent)], PipelineConfig(), store_dir)
    read = _rchar() - before
    assert plan.up_to_date == N_FILES and plan.new == [] and plan.stale == []
    assert read < total // 10, f"a no-op plan read {read} bytes of {total} input bytes"

    before = _rchar()
    again = make_plan([str(files[0].parent)], PipelineConfig(), store_dir, rehash=True)
    assert again.up_to_date == N_FILES
    assert _rchar() - before >= total * 9 // 10  # every file read (rchar is counted per syscall)


def test_a_changed_file_is_hashed_again_and_found_new(stored: tuple[list[Path], Path]) -> None:
    files, store_dir = stored
    files[3].write_bytes(b"other bytes altogether")
    stat = os.stat(files[5])
    os.utime(files[5], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same bytes
    plan = make_plan([str(files[0].parent)], PipelineConfig(), store_dir)
    assert [Path(u).name for u in plan.new] == ["note_003.txt"]
    assert plan.up_to_date == N_FILES - 1 and plan.new_uris == []


def test_ledger_cache_maps_each_path_to_its_media_id(stored: tuple[list[Path], Path]) -> None:
    files, store_dir = stored
    cache = read_ledger(Store(store_dir)).cache()
    uri = str(files[7].resolve())
    assert cache.lookup(uri, file_stat(files[7])) == hashlib.sha256(files[7].read_bytes()).hexdigest()
    assert cache.lookup(uri + ".gone", file_stat(files[7])) is None


def test_a_failed_item_is_stale_in_media_in_json_as_in_text(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / "broken.txt"
    path.write_bytes(b"bytes that failed before")
    store = Store(tmp_path / "store")
    store.ensure_tables(all_schemas(DIMS))
    failed = _ledger_rows([path], media_version="an older config").to_pylist()
    failed[0]["status"] = "failed"
    store.write("media", pa.Table.from_pylist(failed, schema=all_schemas(DIMS)["media"]))
    plan = make_plan([str(data)], PipelineConfig(), tmp_path / "store")
    assert [s["tables"] for s in plan.stale] == [["media"]]  # the text form prints "(media)" too


def test_the_ledger_join_finds_copies_new_paths_and_touched_files(stored: tuple[list[Path], Path]) -> None:
    """The plan's joins (hash cache, ledger) agree with the item-by-item rules on every kind of change."""
    files, store_dir = stored
    data = files[0].parent
    (data / "copy_of_1.txt").write_bytes(files[1].read_bytes())  # known bytes under a new path
    (data / "copy_of_1b.txt").write_bytes(files[1].read_bytes())  # and another: a duplicate this run
    stat = os.stat(files[2])
    os.utime(files[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: hashed again, same id
    (data / "fresh.txt").write_bytes(b"bytes never seen")
    store = Store(store_dir)
    from mmfs.pipelines.plan import find_work
    from mmfs.pipelines.sources import list_inputs

    inputs, _ = list_inputs([str(data)], PipelineConfig().sources)
    work = find_work(inputs, PipelineConfig(), store, read_ledger(store))
    assert [Path(p.item.uri).name for p in work.todo] == ["fresh.txt"]
    updates = {Path(p.item.uri).name: sorted(Path(u).name for u in uris) for p, uris in work.media_only}
    assert updates == {
        "copy_of_1.txt": ["copy_of_1.txt", "copy_of_1b.txt", "note_001.txt"],
        "note_002.txt": ["note_002.txt"],  # its new stat goes into the ledger: not read next time
    }
    assert sorted(work.stats) == sorted(
        str((data / n).resolve()) for n in ("copy_of_1.txt", "copy_of_1b.txt", "note_002.txt", "fresh.txt")
    )
    assert work.duplicates == 2 and work.n_items == N_FILES + 1
    assert work.n_skipped == N_FILES - 2
    plan = make_plan([str(data)], PipelineConfig(), store_dir)
    assert sorted(Path(u).name for u in plan.new_uris) == ["copy_of_1.txt", "copy_of_1b.txt"]
    assert plan.up_to_date == N_FILES - 1 and [Path(u).name for u in plan.new] == ["fresh.txt"]
