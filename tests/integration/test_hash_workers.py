"""Under Ray and Beam the plan's new files are hashed by worker processes, not the driver, and the plan
is the local runner's: the same media ids and sizes row by row, the same stats recorded, the same
quarantine failures (error class, code and message) for empty, oversized and vanished files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mmfs.config import PipelineConfig
from mmfs.pipelines import identify
from mmfs.pipelines.inputs import Inputs
from mmfs.pipelines.plan import find_work, read_ledger
from mmfs.pipelines.sources import list_inputs
from mmfs.stages import hash_files
from mmfs.stages.items import SourceItem, StageFailure
from mmfs.store.db import Store

pytestmark = pytest.mark.slow
MIB = 2**20
N_FILES = 40


def _rchar() -> int:
    """Bytes this process has passed through read() (with its reaped children's), from /proc/self/io."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _config(kind: str) -> PipelineConfig:
    runner: dict[str, Any] = {"kind": kind}
    if kind == "beam":  # the DoFns in two worker processes, as on a cluster
        runner["beam_options"] = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    return PipelineConfig.model_validate({"runner": runner, "limits": {"max_bytes": 3 * MIB}})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Inputs, int]:
    """40 distinct 2 MiB files, two with the same bytes, an empty one, one over the byte limit and one
    that vanishes between listing and hashing; listed once (the listing is the driver's in every run)."""
    root = tmp_path_factory.mktemp("hash-workers")
    data = root / "data"
    data.mkdir()
    block = os.urandom(2 * MIB)  # 82 MiB to hash: far above what Ray's own traffic adds to the driver
    for i in range(N_FILES):
        (data / f"clip_{i:02d}.bin").write_bytes(i.to_bytes(4, "little") + block[4:])
    (data / "clip_copy.bin").write_bytes((data / "clip_07.bin").read_bytes())
    (data / "empty.bin").write_bytes(b"")
    (data / "huge.bin").write_bytes(block * 2)
    (data / "vanished.bin").write_bytes(b"here at listing time")
    inputs, rejected = list_inputs([str(data)], _config("local").sources)
    assert not rejected and len(inputs) == N_FILES + 4
    (data / "vanished.bin").unlink()
    return root, inputs, (N_FILES + 1) * 2 * MIB


def _plan(kind: str, root: Path, inputs: Inputs) -> tuple[Any, int]:
    """The plan of the inputs against an empty store under `kind`, and the bytes the driver read."""
    store = Store(root / f"store-{kind}")
    before = _rchar()
    work = find_work(inputs, _config(kind), store, read_ledger(store))
    return work, _rchar() - before


def _summary(work: Any) -> dict[str, Any]:
    """What the plan decided, in plain values (failures by class, code and message)."""
    return {
        "todo": [(p.media_id, p.item.uri, list(p.uris), p.n_bytes) for p in work.todo],
        "n_items": work.n_items,
        "duplicates": work.duplicates,
        "stats": work.stats,
        "unreadable": [
            (key, uri, f.stage, type(f.error).__name__, int(f.error.code), f.error.message)
            for key, uri, f in work.unreadable
        ],
    }


@pytest.fixture(scope="module")
def local_plan(corpus: tuple[Path, Inputs, int]) -> tuple[dict[str, Any], int]:
    root, inputs, _ = corpus
    work, read = _plan("local", root, inputs)
    return _summary(work), read


def test_the_local_plan_reads_every_new_byte_on_the_driver(
    corpus: tuple[Path, Inputs, int], local_plan: tuple[dict[str, Any], int]
) -> None:
    """The measure the worker tests rely on: hashing on the driver shows in its rchar."""
    plan, read = local_plan
    assert read >= corpus[2]
    assert plan["n_items"] == N_FILES and plan["duplicates"] == 1
    codes = {uri.rsplit("/", 1)[1]: (kind, code) for _, uri, _, kind, code, _ in plan["unreadable"]}
    assert codes == {"empty.bin": ("EmptyFile", 1001), "huge.bin": ("MediaLimitExceeded", 1101),
                     "vanished.bin": ("MediaError", 1002)}  # fmt: skip


@pytest.mark.ray
def test_ray_workers_hash_the_new_files_and_the_plan_is_the_local_one(
    corpus: tuple[Path, Inputs, int], local_plan: tuple[dict[str, Any], int]
) -> None:
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'mmfs[ray]'")
    from mmfs.runners import ray as runner_ray

    root, inputs, total = corpus
    runner_ray.start_ray(_config("ray").runner)  # started before measuring: its start-up reads files
    try:
        work, read = _plan("ray", root, inputs)
    finally:
        runner_ray.release_ray()
    assert _summary(work) == local_plan[0]
    assert identify.HASHED_ON and os.getpid() not in {pid for _, pid in identify.HASHED_ON}
    assert read < total / 4, f"the driver read {read} bytes of {total}"


@pytest.mark.beam
def test_beam_workers_hash_the_new_files_and_the_plan_is_the_local_one(
    corpus: tuple[Path, Inputs, int], local_plan: tuple[dict[str, Any], int]
) -> None:
    """Beam's worker processes are the driver's children (their reads count in its rchar once they
    exit), so where the hashing ran is checked by the pids that report it."""
    pytest.importorskip("apache_beam", reason="Beam is an optional extra: pip install 'mmfs[beam]'")
    root, inputs, _ = corpus
    work, _ = _plan("beam", root, inputs)
    assert _summary(work) == local_plan[0]
    pids = {pid for _, pid in identify.HASHED_ON}
    assert pids and os.getpid() not in pids
    assert not list((root / "store-beam").rglob("hash-*"))  # the results' folder is removed


def test_worker_results_read_back_as_the_driver_makes_them(tmp_path: Path) -> None:
    """`hash_rows` → `from_hashed` keeps ids, sizes, stats and each failure's class, code and message,
    in order, whatever the chunking."""
    cfg = _config("local")
    paths = [tmp_path / f"n{i}.txt" for i in range(30)]
    for i, path in enumerate(paths):
        path.write_text(f"note {i}\n" * (i + 1))
    paths[3].write_bytes(b"")
    paths[11].unlink()
    items = [SourceItem(path=p, uri=str(p)) for p in paths]
    stats: dict[str, Any] = {}
    expected = identify.identify_each(items, cfg, False, None, stats)
    rows = [identify.item_row(i) for i in items]
    chunks = identify.chunk_rows(rows, [None] * len(rows))
    assert len(chunks) == 4 and [r for c in chunks for r in c] == rows  # 8 a chunk at least, in order
    back = [hash_files.from_hashed(r) for c in chunks for r in hash_files.hash_chunk(c, cfg)["results"]]
    assert [_plain(found) for found, _ in back] == [_plain(e) for e in expected]
    assert {str(p): s for p, (_, s) in zip(paths, back, strict=True) if s is not None} == stats
    # a big file is a task of its own
    sizes = [identify.CHUNK_BYTES, 10, 10, identify.CHUNK_BYTES // 2, identify.CHUNK_BYTES // 2 + 1]
    assert [len(c) for c in identify.chunk_rows(rows[:5], list(sizes))] == [1, 3, 1]


def _plain(found: Any) -> Any:
    """A hashing result as plain values: (media_id, size), or the failure's stage, class, code, message."""
    if isinstance(found, StageFailure):
        return (found.stage, type(found.error).__name__, int(found.error.code), found.error.message)
    return found
