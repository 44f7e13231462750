"""Training readers on a real multi-fragment LanceDB store: sharding, shuffle, splits, resume, workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from mmfs.errors import ConfigError
from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.readers import VALID_KEY, FeatureBatch, FeatureDataset, FeatureMapDataset
from mmfs.store.readers_plan import epoch_order, worker_positions
from mmfs.store.splits import check_fractions, split_of

DIMS = Dims(image=4, text=3, audio=2)
KEY_COLUMNS = ["media_id", "segment_index"]
N_ROWS = 101  # odd, so shares across 2 ranks need a drop or a pad


def _segments(start: int, n: int, run_id: str = "r1") -> pa.Table:
    """Segment rows start..start+n-1: three per media item, every seventh `fused` vector null."""
    rows = []
    for i in range(start, start + n):
        vec = [float(i), float(i % 3), 1.0]
        rows.append(
            {
                "media_id": f"m{i // 3:03d}",
                "segment_index": i % 3,
                "start_s": float(i % 3),
                "kind": "video",
                "text": vec,
                "fused": None if i % 7 == 0 else vec,
                "feature_version": "f1",
                "run_id": run_id,
            }
        )
    return pa.Table.from_pylist(rows, schema=all_schemas(DIMS)["segments"])


def _build(uri: Path) -> Store:
    """A store whose segments table has several fragments and deletions (merge updates)."""
    store = Store(uri)
    store.ensure_tables({"segments": all_schemas(DIMS)["segments"]})
    for start in range(0, N_ROWS, 30):
        store.write("segments", _segments(start, min(30, N_ROWS - start)))
    store.write("segments", _segments(10, 15, run_id="r2"))  # rewrites rows: deletion vectors
    return store


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("readers") / "store"
    store = _build(path)
    assert store.table("segments").stats()["fragment_stats"]["num_fragments"] > 1
    return str(path)


def _keys(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(r["media_id"], r["segment_index"]) for r in rows]


def _batch_keys(batches: list[dict[str, Any]]) -> list[tuple[str, int]]:
    out = []
    for batch in batches:
        index = batch["segment_index"]  # a list from FeatureDataset, a tensor after default collate
        index = index.tolist() if isinstance(index, torch.Tensor) else index
        out.extend(zip(batch["media_id"], index, strict=True))
    return out


ALL_KEYS = {(f"m{i // 3:03d}", i % 3) for i in range(N_ROWS)}


def test_rows_pin_the_version_and_keep_null_vectors(tmp_path: Path) -> None:
    store = _build(tmp_path / "store")
    ds = FeatureDataset(str(tmp_path / "store"), "segments", [*KEY_COLUMNS, "fused"])
    rows = list(ds)
    assert sorted(_keys(rows)) == sorted(ALL_KEYS)
    assert sum(r["fused"] is None for r in rows) == len([i for i in range(N_ROWS) if i % 7 == 0])
    assert all(
        r["fused"] is None or (r["fused"].dtype, r["fused"].shape) == (torch.float32, (3,)) for r in rows
    )
    store.table("segments").tags.create("before-extra", ds.version)
    store.write("segments", _segments(N_ROWS, 9))
    assert len(list(ds)) == N_ROWS  # pinned: later writes are invisible
    assert len(list(FeatureDataset(str(tmp_path / "store"), columns=KEY_COLUMNS))) == N_ROWS + 9
    by_tag = FeatureDataset(str(tmp_path / "store"), columns=KEY_COLUMNS, version="before-extra")
    assert by_tag.version == ds.version and len(by_tag) == N_ROWS


@pytest.mark.parametrize("shuffle", [False, True])
def test_ranks_get_equal_disjoint_shares(uri: str, shuffle: bool) -> None:
    def shares(drop_last: bool, world_size: int) -> list[list[tuple[str, int]]]:
        options = {"world_size": world_size, "shuffle": shuffle, "seed": 3, "drop_last": drop_last}
        return [
            _keys(list(FeatureDataset(uri, columns=KEY_COLUMNS, rank=rank, **options)))
            for rank in range(world_size)
        ]

    dropped = shares(drop_last=True, world_size=2)
    assert [len(s) for s in dropped] == [N_ROWS // 2] * 2
    assert not set(dropped[0]) & set(dropped[1]) and len(set(dropped[0] + dropped[1])) == N_ROWS - 1
    padded = shares(drop_last=False, world_size=3)
    assert [len(s) for s in padded] == [34] * 3
    seen = Counter(key for share in padded for key in share)
    assert set(seen) == ALL_KEYS and sorted(seen.values()) == [1] * 100 + [2]  # one row wraps around


def test_shuffle_is_deterministic_by_seed_and_epoch(uri: str) -> None:
    def order(seed: int, epoch: int, block: int = 1) -> list[tuple[str, int]]:
        ds = FeatureDataset(uri, columns=KEY_COLUMNS, shuffle=True, seed=seed, shuffle_block=block)
        ds.set_epoch(epoch)
        return _keys(list(ds))

    first = order(seed=7, epoch=0)
    assert first == order(seed=7, epoch=0)
    assert first != order(seed=7, epoch=1) and first != order(seed=8, epoch=0)
    assert sorted(first) == sorted(ALL_KEYS) and first != sorted(first)
    blocked = order(seed=7, epoch=0, block=8)
    assert sorted(blocked) == sorted(ALL_KEYS) and blocked == order(seed=7, epoch=0, block=8)
    plan = epoch_order(40, shuffle=True, seed=1, epoch=0, block=8)
    assert sorted(plan.tolist()) == list(range(40))
    assert all(len(set(plan[i : i + 8] // 8)) == 1 for i in range(0, 40, 8))  # blocks move whole


def test_splits_by_media_id_are_disjoint_and_cover_everything(uri: str) -> None:
    fractions = {"train": 0.6, "val": 0.4}
    parts = {
        name: _keys(list(FeatureDataset(uri, columns=KEY_COLUMNS, split=name, split_fractions=fractions)))
        for name in fractions
    }
    assert not set(parts["train"]) & set(parts["val"])
    assert sorted(parts["train"] + parts["val"]) == sorted(ALL_KEYS)
    assert parts["train"] and parts["val"]
    pairs = check_fractions("train", fractions)
    for name, keys in parts.items():
        assert {split_of(media_id, pairs) for media_id, _ in keys} == {name}  # whole items, by hash
    as_map = FeatureMapDataset(uri, columns=KEY_COLUMNS, split="val", split_fractions=fractions)
    assert sorted(_keys([as_map[i] for i in range(len(as_map))])) == sorted(parts["val"])
    with pytest.raises(ConfigError, match="sum to 1"):
        FeatureDataset(uri, split="train", split_fractions={"train": 0.9, "val": 0.2})
    with pytest.raises(ConfigError, match="not one of"):
        FeatureDataset(uri, split="test")


@pytest.mark.parametrize("batch_size", [None, 16])
def test_resume_yields_exactly_the_rows_not_yet_seen(tmp_path: Path, batch_size: int | None) -> None:
    store = _build(tmp_path / "store")
    options: dict[str, Any] = {
        "rank": 1,
        "world_size": 2,
        "shuffle": True,
        "seed": 5,
        "batch_size": batch_size,
    }
    ds = FeatureDataset(str(tmp_path / "store"), "segments", KEY_COLUMNS, **options)
    ds.set_epoch(2)
    full = list(ds)
    taken = []
    for item in ds:  # consume part of the epoch, then stop as a crash would
        taken.append(item)
        if len(taken) == 3:
            break
    state = json.loads(json.dumps(ds.state_dict()))
    assert (state["epoch"], state["seed"], state["position"]) == (2, 5, 3 * (batch_size or 1))
    store.write("segments", _segments(N_ROWS, 12))  # ingest goes on meanwhile
    resumed = FeatureDataset(str(tmp_path / "store"), "segments", KEY_COLUMNS, **{**options, "seed": 0})
    resumed.load_state_dict(state)
    rest = list(resumed)
    as_keys = _keys if batch_size is None else _batch_keys
    assert as_keys(taken) + as_keys(rest) == as_keys(full)
    resumed.set_epoch(3)  # a new epoch starts from the top, still at the version the state pinned
    again = as_keys(list(resumed))
    assert len(again) == 51 and again != as_keys(full)
    other_rank = FeatureDataset(str(tmp_path / "store"), "segments", KEY_COLUMNS, **{**options, "rank": 0})
    with pytest.raises(ConfigError, match="cannot resume: state has rank=1"):
        other_rank.load_state_dict(state)
    with pytest.raises(ConfigError, match="cannot resume at row 52"):
        resumed.load_state_dict({**state, "position": 52})


def test_batches_stack_vectors_with_zeros_and_masks_for_nulls(uri: str) -> None:
    ds = FeatureDataset(uri, columns=[*KEY_COLUMNS, "fused", "text"], batch_size=32)
    batches = list(ds)
    assert [len(b["media_id"]) for b in batches] == [32, 32, 32, 5] and len(ds) == 4
    fused, valid = batches[0]["fused"], batches[0][VALID_KEY]["fused"]
    assert fused.dtype == torch.float32 and tuple(fused.shape) == (32, 3)
    assert not valid.all() and bool((fused[~valid] == 0).all()) and bool(batches[0][VALID_KEY]["text"].all())
    assert sorted(_batch_keys(batches)) == sorted(ALL_KEYS)


def test_a_batch_pickles_as_one_buffer_of_views(uri: str) -> None:
    batch = next(iter(FeatureDataset(uri, columns=[*KEY_COLUMNS, "fused", "text"], batch_size=16)))
    assert isinstance(batch, FeatureBatch)
    copy = pickle.loads(pickle.dumps(batch))
    assert list(copy) == list(batch) and copy["media_id"] == batch["media_id"]
    for name in ("fused", "text"):
        assert torch.equal(copy[name], batch[name])
        assert torch.equal(copy[VALID_KEY][name], batch[VALID_KEY][name])
    views = (copy["fused"], copy["text"], copy[VALID_KEY]["fused"])
    assert len({t.untyped_storage().data_ptr() for t in views}) == 1  # rebuilt as views of one buffer
    copy["text"] = torch.zeros(16, 3)  # replaced by the user: pickled on its own, not as a view
    assert torch.equal(pickle.loads(pickle.dumps(copy))["text"], torch.zeros(16, 3))


@pytest.mark.parametrize(("n", "start", "workers", "unit"), [(10, 0, 2, 1), (23, 5, 3, 4), (7, 7, 2, 3)])
def test_workers_taking_turns_deliver_the_plan_in_order(n: int, start: int, workers: int, unit: int) -> None:
    queues = [list(worker_positions(n, start, w, workers, unit)) for w in range(workers)]
    merged = []
    while any(queues):  # a DataLoader's in-order round robin, one unit per worker per turn
        for queue in queues:
            merged.extend(queue[:unit])
            del queue[:unit]
    assert merged == list(range(start, n))


def test_map_dataset_with_distributed_sampler(uri: str) -> None:
    ds = FeatureMapDataset(uri, columns=[*KEY_COLUMNS, "text"])
    assert len(ds) == N_ROWS
    assert _keys(ds.__getitems__([5, 2, 5])) == [_keys([ds[5]])[0], _keys([ds[2]])[0], _keys([ds[5]])[0]]
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=1, drop_last=True)
        loader = DataLoader(ds, batch_size=8, sampler=sampler)
        batches = list(loader)
        assert batches[0]["text"].shape == (8, 3)
        seen.append(_batch_keys(batches))
    assert len(seen[0]) == len(seen[1]) == 50 and not set(seen[0]) & set(seen[1])
    with pytest.raises(IndexError):
        ds[N_ROWS]


def _through_loader(ds: FeatureDataset, context: str, stop_after: int | None = None) -> list[Any]:
    loader = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context=context, timeout=120)
    out = []
    for item in loader:
        out.append(item)
        if stop_after is not None and len(out) == stop_after:
            break
    return out


@pytest.mark.slow
def test_two_spawn_workers_see_every_row_once_and_resume_exactly(uri: str) -> None:
    ds = FeatureDataset(uri, "segments", [*KEY_COLUMNS, "fused"], shuffle=True, seed=11)
    ds.set_epoch(1)
    in_process = _keys(list(ds))
    rows = _through_loader(ds, "spawn")
    assert _keys(rows) == in_process  # in plan order, so a count of rows is a position
    assert Counter(_keys(rows)) == Counter(ALL_KEYS)
    assert any(r["fused"] is None for r in rows)
    taken = _through_loader(ds, "spawn", stop_after=40)
    resumed = FeatureDataset(uri, "segments", [*KEY_COLUMNS, "fused"], shuffle=True)
    resumed.load_state_dict(ds.state_dict(consumed=len(taken)))
    assert _keys(taken) + _keys(_through_loader(resumed, "spawn")) == in_process


def _fork_scenario(uri: str) -> dict[str, list[tuple[str, int]]]:
    """Fork-worker loaders over two ranks and a map-style dataset, run in a fresh process.

    Fresh, because `fork` is only safe in a process that has not used `lance` directly, and other
    tests in this session may have (SQL, polars); the readers themselves keep to LanceDB here.
    """
    out = {}
    for rank in range(2):
        ds = FeatureDataset(uri, columns=KEY_COLUMNS, rank=rank, world_size=2, batch_size=8, drop_last=True)
        out[f"in_process{rank}"] = _batch_keys(list(ds))  # the parent reads before it forks
        out[f"forked{rank}"] = _batch_keys(_through_loader(ds, "fork"))
    as_map = FeatureMapDataset(uri, columns=KEY_COLUMNS)
    loader = DataLoader(as_map, batch_size=10, num_workers=2, multiprocessing_context="fork", timeout=120)
    out["map"] = _batch_keys(list(loader))
    return out


@pytest.mark.slow
def test_two_fork_workers_per_rank_see_every_row_once(uri: str) -> None:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        out = pool.submit(_fork_scenario, uri).result(timeout=300)
    for rank in range(2):
        assert out[f"forked{rank}"] == out[f"in_process{rank}"]  # in plan order, as in-process
    assert len(out["forked0"]) == len(out["forked1"]) == N_ROWS // 2
    assert not set(out["forked0"]) & set(out["forked1"])
    assert Counter(out["map"]) == Counter(ALL_KEYS)


def test_bad_arguments_are_config_errors(uri: str) -> None:
    with pytest.raises(ConfigError, match="rank"):
        FeatureDataset(uri, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="unknown columns"):
        FeatureDataset(uri, columns=["nope"])
    with pytest.raises(ConfigError, match="positive"):
        FeatureDataset(uri, batch_size=0)
    assert np.array_equal(epoch_order(5, shuffle=False, seed=0, epoch=0), np.arange(5))


@pytest.mark.slow
def test_workers_recycle_batch_memory_but_never_under_a_held_batch(uri: str) -> None:
    ds = FeatureDataset(uri, "segments", [*KEY_COLUMNS, "fused", "text"], batch_size=4)
    expected = list(ds)
    loader = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="spawn", timeout=120)
    held, recycled = [], 0

    def same(batch: Any, want: Any) -> bool:
        return batch["media_id"] == want["media_id"] and all(
            torch.equal(batch[c], want[c]) and torch.equal(batch[VALID_KEY][c], want[VALID_KEY][c])
            for c in ("fused", "text")
        )

    for i, batch in enumerate(loader):
        assert same(batch, expected[i])
        recycled += not batch.buffer.is_shared()  # a worker's memfd segment, not a one-off torch buffer
        if i % 3 == 0:
            held.append((i, batch))  # the loop keeps these: their segments must stay untouched
        del batch
    assert len(expected) == -(-N_ROWS // 4) and recycled > 0
    assert all(same(batch, expected[i]) for i, batch in held)


def _take(loader: Any, stop_after: int | None = None) -> list[Any]:
    out = []
    for item in loader:
        out.append(item)
        if stop_after is not None and len(out) == stop_after:
            break
    return out


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [None, 8])
def test_state_dict_behind_two_workers_resumes_exactly_without_counting(
    uri: str, batch_size: int | None
) -> None:
    options: dict[str, Any] = {"shuffle": True, "seed": 4, "batch_size": batch_size}
    as_keys = _keys if batch_size is None else _batch_keys
    ds = FeatureDataset(uri, "segments", [*KEY_COLUMNS, "fused"], **options)
    ds.set_epoch(1)
    expected = as_keys(list(ds))
    loader = ds.loader(num_workers=2, multiprocessing_context="spawn", timeout=120, prefetch_factor=4)
    taken = _take(loader, stop_after=5)  # the workers have read ahead of the loop by now
    state = json.loads(json.dumps(ds.state_dict()))  # no count from the user
    assert state["position"] == 5 * (batch_size or 1) and loader.state_dict() == state
    resumed = FeatureDataset(uri, "segments", [*KEY_COLUMNS, "fused"], **{**options, "seed": 0})
    resumed.load_state_dict(state)
    rest = _take(resumed.loader(num_workers=2, multiprocessing_context="spawn", timeout=120))
    assert as_keys(taken) + as_keys(rest) == expected
    assert resumed.state_dict()["position"] == len(expected)


@pytest.mark.slow
def test_plain_loader_with_workers_warns_instead_of_a_silent_zero(uri: str) -> None:
    ds = FeatureDataset(uri, "segments", KEY_COLUMNS, batch_size=8)
    loader = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="spawn", timeout=120)
    _take(loader, stop_after=2)
    with pytest.warns(RuntimeWarning, match="cannot see the rows taken"):
        ds.state_dict()
    assert ds.state_dict(consumed=16)["position"] == 16
    with pytest.raises(ConfigError, match="batch_size on the FeatureDataset"):
        ds.loader(batch_size=4, num_workers=2)


def _readme_snippet() -> str:
    """The README's DataLoader example, verbatim: the python block that starts workers with spawn."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    found = [block for block in blocks if 'multiprocessing_context="spawn"' in block]
    assert len(found) == 1, "the README should have one DataLoader example with spawn workers"
    return found[0]


def _snippet_store(uri: Path) -> None:
    """A small store with the segments and frames columns the README example reads."""
    schemas = all_schemas(DIMS)
    store = Store(uri)
    store.ensure_tables({name: schemas[name] for name in ("segments", "frames")})
    segments = [
        {
            "media_id": f"m{i // 4}",
            "segment_index": i % 4,
            "start_s": float(i % 4),
            "visual": None if i % 5 == 0 else [float(i)] * 4,
            "audio": [0.5, float(i)],
            "text": [1.0, 0.0, float(i)],
            "fused": [float(i)] * 3,
            "feature_version": "f1",
            "run_id": "r1",
        }
        for i in range(2100)  # more than the example's batch of 1024, so there are three batches
    ]
    store.write("segments", pa.Table.from_pylist(segments, schema=schemas["segments"]))
    frames = [
        {
            "media_id": "m0",
            "frame_index": i,
            "t_s": 4.0 * i,
            "labels": ["cat"],
            "feature_version": "f1",
            "run_id": "r1",
        }
        for i in range(5)
    ]
    store.write("frames", pa.Table.from_pylist(frames, schema=schemas["frames"]))


@pytest.mark.slow
def test_readme_dataloader_example_runs_as_a_script(tmp_path: Path) -> None:
    _snippet_store(tmp_path / "store")
    script = tmp_path / "train_snippet.py"
    script.write_text(_readme_snippet(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "1024 torch.Size([1024, 4]) 819",
        "1024 torch.Size([1024, 4]) 819",
        "52 torch.Size([52, 4]) 42",
    ]
    assert "shape: (3, 3)" in done.stdout  # frames at t_s 0, 4 and 8
