"""Four `mmfs run` processes write into one store at once, with overlapping inputs: every row lands once.

The reference is one sequential run over the union of the inputs; the concurrent store must hold
exactly its keys in every table, with no key twice, although the same items were processed by
several runs at the same moment (Lance's primary-key marker makes racing inserts of one key conflict
and retry as an update instead of both inserting).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mmfs.config import config_from_dict
from mmfs.pipelines.run import run_pipeline
from mmfs.schemas.tables import KEYS
from mmfs.store.db import Store
from mmfs.store.lock import WRITERS_DIR
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]  # the subprocesses import tests.fake_encoders from here
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
}
# This test is about keys under racing writers: the deterministic `test.*` encoders stand in for the
# models (tests/fake_encoders.py), as in the chaos test; four processes loading real weights at once
# on 2 cores cost a minute and test nothing more here.
CONFIG = {"encoders": FAKE_ENCODERS}
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


def writer_seeds() -> list[int]:
    """Seeds from MMFS_WRITER_SEEDS: a count (seeds 1..N) or a comma-separated list; 1 by default."""
    spec = os.environ.get("MMFS_WRITER_SEEDS", "1").strip()
    if "," in spec:
        return [int(s) for s in spec.split(",") if s.strip()]
    return list(range(1, int(spec) + 1))


@pytest.fixture(scope="module")
def corpus_and_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    root = tmp_path_factory.mktemp("writers")
    files = _corpus(root / "data")
    reference = root / "reference"
    run_pipeline([str(f) for f in files], config_from_dict(CONFIG), reference, show_progress=False)
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return files, reference


def _slices(files: list[Path], seed: int) -> tuple[list[list[Path]], list[float]]:
    """Four overlapping inputs covering everything, and start delays; seed 1 is a fixed layout."""
    n = len(files)
    if seed == 1:
        return [files[: n // 2], files[n // 3 : n], files[n // 4 : 3 * n // 4], files], [0.0] * 4
    rng = random.Random(seed)
    parts = [rng.sample(files, rng.randint(n // 3, n)) for _ in range(3)]
    covered = {f for part in parts for f in part}
    parts.append([f for f in files if f not in covered] + rng.sample(files, n // 4))  # the rest, overlapping
    return parts, [rng.uniform(0.0, 3.0) for _ in parts]


@pytest.mark.parametrize("seed", writer_seeds())
def test_four_concurrent_runs_with_overlapping_inputs_land_every_row_once(
    corpus_and_reference: tuple[list[Path], Path], tmp_path: Path, seed: int
) -> None:
    files, reference = corpus_and_reference
    shared = tmp_path / "shared"
    slices, delays = _slices(files, seed)
    config = reference.parent / "config.yaml"
    cmd = [sys.executable, "-m", "mmfs.cli", "run", "--store", str(shared), "--config", str(config)]
    cmd += ["--json", "--quiet"]
    procs = []
    start = time.monotonic()
    for part, delay in sorted(zip(slices, delays, strict=True), key=lambda pd: pd[1]):
        time.sleep(max(0.0, start + delay - time.monotonic()))
        procs.append(
            subprocess.Popen(
                [*cmd, *map(str, part)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
            )
        )
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
