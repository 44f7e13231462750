"""Chaos: `mmfs run` killed with SIGKILL at a random moment or at a named fault point, then re-run.

After the re-run every table holds exactly the keys of an uninterrupted run, none twice. The random
moments come from seeds: `MMFS_CHAOS_SEEDS` is a count (`50`: seeds 1..50) or a list (`3,17`); CI
runs the default handful, `make chaos` runs 50. Each case kills a real subprocess, so nothing in the
dying process gets a chance to clean up, exactly as in a crash or an OOM kill.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mmfs.config import config_from_dict
from mmfs.faults import Fault
from mmfs.pipelines.run import run_pipeline
from mmfs.schemas import KEYS
from mmfs.store.db import Store
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS
from tests.processes import wait_until_gone
from tests.store_diff import table_differences

pytestmark = pytest.mark.slow
# The deterministic `test.*` encoders (tests/fake_encoders.py): this test is about exactly-once under
# SIGKILL, and the same bytes give the same vectors, so the rows can be compared value for value.
# Small commits (runner.commit_rows), so a run of two dozen items commits many times, as a long run does.
CONFIG = {
    "runner": {"batch_media": 3, "commit_rows": 40},
    "video": {"fps": 2.0},
    "index": {"auto": False},
    "encoders": FAKE_ENCODERS,
}
CFG = config_from_dict(CONFIG)
DATA = ("media", "frames", "flow", "audio", "text", "segments", "quarantine")
ROOT = Path(__file__).resolve().parents[2]  # the subprocesses import tests.fake_encoders from here
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
}
KILL_POINTS = [
    Fault.BEFORE_FRAGMENT_WRITE,
    Fault.AFTER_FRAGMENTS_BEFORE_COMMIT,
    Fault.AFTER_COMMIT_BEFORE_LEDGER,
]


def chaos_seeds() -> list[int]:
    """Seeds from MMFS_CHAOS_SEEDS: a count (seeds 1..N) or a comma-separated list; 3 by default."""
    spec = os.environ.get("MMFS_CHAOS_SEEDS", "3").strip()
    if "," in spec:
        return [int(s) for s in spec.split(",") if s.strip()]
    return list(range(1, int(spec) + 1))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two dozen small items of every kind, one of them unreadable."""
    root = tmp_path_factory.mktemp("chaos")
    data = root / "data"
    for i in range(8):
        mf.write_image(data / f"image_{i}.png", width=80, height=60, seed=i)
        mf.write_text(data / f"note_{i}.txt", f"Note {i}: the ferry leaves at {i + 6} and returns at noon.")
    for i in range(4):
        mf.write_wav(data / f"tone_{i}.wav", duration_s=1.2, freq_hz=250.0 + 90 * i)
    for i in range(3):
        times = mf.constant_rate_times(12, 6)
        painter = mf.translating_painter(64, 48, 1.0 + i, 0.0, seed=i)
        mf.write_video(data / f"clip_{i}.mp4", times_s=times, painter=painter, audio_tone_hz=300.0 + 50 * i)
    (data / "empty.mp4").write_bytes(b"")
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")  # the same as CFG
    return data


def _keys(store: Store) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for table in DATA:
        rows = store.read(table, list(KEYS[table])).to_pylist() if store.has(table) else []
        out[table] = sorted(tuple(r[k] for k in KEYS[table]) for r in rows)
    return out


def _command(corpus: Path, store: Path) -> list[str]:
    config = corpus.parent / "config.yaml"
    return [
        sys.executable,
        "-m",
        "mmfs.cli",
        "run",
        str(corpus),
        "--store",
        str(store),
        "--config",
        str(config),
    ]


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run: its keys, its store (for the rows), and how long it took."""

    keys: dict[str, list[tuple[object, ...]]]
    store: Path
    end_s: float


@pytest.fixture(scope="module")
def reference(corpus: Path) -> Reference:
    """The uninterrupted run as a subprocess, timed."""
    store = corpus.parent / "reference"
    start = time.monotonic()
    done = subprocess.run([*_command(corpus, store), "--quiet"], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return Reference(_keys(Store(store)), store, time.monotonic() - start)


def _rerun_and_check(store: Path, corpus: Path, expected: Reference) -> None:
    summary = run_pipeline([str(corpus)], CFG, store, show_progress=False)
    outcomes = summary.n_ok + summary.n_quarantined + summary.n_skipped + summary.n_duplicates
    assert outcomes == summary.n_inputs
    assert _keys(Store(store)) == expected.keys  # sorted lists: a key written twice would show
    # and each row as an uninterrupted run wrote it (the fake encoders' vectors are exact)
    assert [d for t in DATA for d in table_differences(Store(store), Store(expected.store), t, atol=0)] == []


@pytest.mark.parametrize("seed", chaos_seeds())
def test_sigkill_at_a_random_moment_then_rerun_gives_every_row_once(
    seed: int, corpus: Path, reference: Reference, tmp_path: Path
) -> None:
    # a random moment of the run; when the run beats it (a quieter machine than the reference's), the
    # same seed tries again, earlier, on a fresh store: every seed counts one real kill mid-run
    delay = random.Random(seed).uniform(0.3, 1.0) * reference.end_s
    for _ in range(5):
        store = tmp_path / f"store-{delay:.2f}"
        token = uuid.uuid4().hex  # marks the run and its decode workers
        env = {**ENV, "MMFS_TEST_TOKEN": token}
        proc = subprocess.Popen(
            [*_command(corpus, store), "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        delay *= 0.6
    else:
        pytest.fail(f"seed {seed}: every run finished before its kill: nothing was tested")
    done = len(_keys(Store(store))["media"]) if (store / "media.lance").exists() else 0
    state = f"killed with {done}/{len(reference.keys['media'])} items in the ledger"
    print(f"chaos seed={seed} t={delay:.1f}s of {reference.end_s:.1f}s: {state}")  # `make chaos` shows these
    assert wait_until_gone(token) == []  # its decode workers died with it
    _rerun_and_check(store, corpus, reference)


@pytest.mark.parametrize("point", KILL_POINTS, ids=lambda p: p.value)
def test_sigkill_at_each_commit_boundary_then_rerun_gives_every_row_once(
    point: Fault, corpus: Path, reference: Reference, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    env = {**ENV, "MMFS_FAULT": f"{point.value}:kill"}
    done = subprocess.run(_command(corpus, store), env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == -signal.SIGKILL, "the fault point was never reached"
    partial = _keys(Store(store))
    assert len(partial["media"]) < len(reference.keys["media"])  # the kill really cut the run short
    _rerun_and_check(store, corpus, reference)
