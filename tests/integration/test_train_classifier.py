"""examples/train_classifier.py under torchrun, two ranks (gloo): disjoint shares, a curve, exact resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.readers import FeatureDataset

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DIMS = Dims(image=4, text=3, audio=2)
KINDS = ["video", "audio", "image", "text"]


def _store(uri: Path) -> int:
    """Segments of 40 items, ten of each kind, each kind with its own modalities; returns the version."""
    rows = []
    for item in range(40):
        kind = KINDS[item % 4]
        for index in range(3):
            v = float(item + index)
            rows.append(
                {
                    "media_id": f"m{item:03d}", "segment_index": index, "kind": kind,
                    "visual": [v, 1.0, 0.0, 0.5] if kind in ("video", "image") else None,
                    "audio": [v, -1.0] if kind in ("video", "audio") else None,
                    "text": [0.0, v, 1.0] if kind == "text" else None,
                    "feature_version": "f1", "run_id": "r1",
                }
            )  # fmt: skip
    store = Store(uri)
    store.ensure_tables({"segments": all_schemas(DIMS)["segments"]})
    store.write("segments", pa.Table.from_pylist(rows, schema=all_schemas(DIMS)["segments"]))
    return int(store.table("segments").version)


def _train(store: Path, out: Path, *extra: str) -> None:
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    argv += [str(ROOT / "examples" / "train_classifier.py"), "--store", str(store), "--out", str(out)]
    argv += ["--batch-size", "8", "--checkpoint-every", "2", "--log-rows", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]


def _rows(out: Path, rank: int) -> list[tuple[str, int]]:
    lines = (out / f"rows-rank{rank}.jsonl").read_text().splitlines()
    return [tuple(json.loads(line)["key"]) for line in lines]  # type: ignore[misc]


def test_two_ranks_share_the_split_and_a_resumed_run_continues_where_it_stopped(tmp_path: Path) -> None:
    store = tmp_path / "store"
    version = _store(store)
    full, broken = tmp_path / "full", tmp_path / "broken"
    _train(store, full)
    shares = [_rows(full, rank) for rank in range(2)]
    split = FeatureDataset(str(store), "segments", ["media_id", "segment_index"], split="train")
    keys = Counter((r["media_id"], r["segment_index"]) for r in split)
    assert len(shares[0]) == len(shares[1]) == -(-len(keys) // 2)
    assert set(shares[0]) | set(shares[1]) == set(keys)  # the ranks cover the split...
    overlap = set(shares[0]) & set(shares[1])
    assert len(overlap) == len(shares[0]) * 2 - len(keys)  # ...and overlap only by the pad of an odd split
    assert (full / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((full / "metrics.json").read_text())["version"] == version

    _train(store, broken, "--stop-after", "2")  # a crash after the checkpoint at step 2
    assert [len(_rows(broken, rank)) for rank in range(2)] == [16, 16]
    _train(store, broken, "--resume")
    for rank in range(2):
        assert _rows(broken, rank) == shares[rank]  # the same rows, in the same order, none twice
    assert (
        json.loads((broken / "metrics.json").read_text())["steps"]
        == json.loads((full / "metrics.json").read_text())["steps"]
    )
