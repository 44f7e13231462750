"""Four `mmfs run` processes write into one store at once, with overlapping inputs: every row lands once.

The reference is one sequential run over the union of the inputs; the concurrent store must hold
exactly its keys in every table, with no key twice, although the same items were processed by
several runs at the same moment (Lance's primary-key marker makes racing inserts of one key conflict
and retry as an update instead of both inserting).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mmfs.config import PipelineConfig
from mmfs.pipelines.run import run_pipeline
from mmfs.schemas.tables import KEYS
from mmfs.store.db import Store
from mmfs.store.lock import WRITERS_DIR
from tests import media_factory as mf

pytestmark = pytest.mark.slow
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
TABLES = ("media", "frames", "audio", "text", "segments", "quarantine")


def _corpus(folder: Path) -> list[Path]:
    files = []
    for i in range(5):
        files.append(mf.write_image(folder / f"image_{i}.png", width=64 + 8 * i, height=48, seed=i))
    for i in range(4):
        files.append(mf.write_text(folder / f"note_{i}.txt", f"Note {i}. The tide came in at {i} o'clock."))
    for i in range(2):
        files.append(mf.write_wav(folder / f"tone_{i}.wav", duration_s=1.5, freq_hz=300.0 + 100 * i))
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")  # a quarantined item, written by several runs at once too
    files.append(empty)
    return files


def _keys(store: Store, table: str) -> list[tuple[object, ...]]:
    rows = store.read(table, list(KEYS[table])).to_pylist()
    return [tuple(r[k] for k in KEYS[table]) for r in rows]


def test_four_concurrent_runs_with_overlapping_inputs_land_every_row_once(tmp_path: Path) -> None:
    files = _corpus(tmp_path / "data")
    reference = tmp_path / "reference"
    run_pipeline([str(f) for f in files], PipelineConfig(), reference, show_progress=False)

    shared = tmp_path / "shared"
    n = len(files)
    slices = [files[: n // 2], files[n // 3 : n], files[n // 4 : 3 * n // 4], files]  # all overlap
    cmd = [sys.executable, "-m", "mmfs.cli", "run", "--store", str(shared), "--json", "--quiet"]
    procs = [
        subprocess.Popen(
            [*cmd, *map(str, part)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
        )
        for part in slices
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        summary = json.loads(out)
        assert (
            summary["n_ok"] + summary["n_quarantined"] + summary["n_skipped"] + summary["n_duplicates"]
            == (summary["n_inputs"])
        )

    ref, got = Store(reference), Store(shared)
    for table in TABLES:
        keys = _keys(got, table)
        twice = [k for k, c in Counter(keys).items() if c > 1]
        assert not twice, f"{table}: keys written twice: {twice[:5]}"
        assert sorted(keys) == sorted(_keys(ref, table)), table
    assert got.count("runs") == 4
    assert not list((shared / WRITERS_DIR).iterdir())  # every run unregistered itself
