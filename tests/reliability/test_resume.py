"""Exactly-once: a run that dies at any commit boundary, re-run, equals an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs import faults
from mmfs.config import config_from_dict
from mmfs.pipelines.run import run_pipeline
from mmfs.schemas import KEYS
from mmfs.store.db import Store
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS
from tests.store_diff import table_differences

pytestmark = pytest.mark.slow
# Decoding in-process: an exception injected inside a transform then stops the run, as a bug would
# (with isolate_decode the worker's failure costs its item only: tests/reliability/test_timeouts.py).
# The deterministic `test.*` encoders: this test is about keys and values surviving a crash, and the
# same bytes give the same vectors; the real models are tested where they are the subject.
CFG = config_from_dict(
    {
        "runner": {"batch_media": 2, "isolate_decode": False},
        "video": {"fps": 2.0},
        "encoders": FAKE_ENCODERS,
    }
)
DATA = ("media", "frames", "flow", "audio", "text", "segments", "quarantine")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    mf.write_image(root / "a.png", seed=1)
    mf.write_image(root / "b.jpg", seed=2)
    mf.write_wav(root / "tone.wav", duration_s=1.5)
    mf.write_video(
        root / "clip.mp4", times_s=mf.constant_rate_times(30, 10), width=64, height=48, audio_tone_hz=330
    )
    (root / "clip.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nA grey square fades in.\n")
    (root / "doc.txt").write_text("Lighthouses guide ships. They stand on rocky coasts.")
    (root / "empty.wav").write_bytes(b"")
    return root


def _keys(store: Store) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    for table in DATA:
        rows = store.read(table, KEYS[table]).to_pylist()
        out[table] = sorted(tuple(r[k] for k in KEYS[table]) for r in rows)
    return out


@pytest.fixture(scope="module")
def reference_store(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    store_dir = tmp_path_factory.mktemp("ref") / "store"
    run_pipeline([str(corpus)], CFG, store_dir, show_progress=False)
    return Store(store_dir)


@pytest.fixture(scope="module")
def reference(reference_store: Store) -> dict[str, list[tuple[object, ...]]]:
    return _keys(reference_store)


@pytest.mark.parametrize("point", list(faults.Fault))
def test_crash_then_rerun_gives_every_row_once(
    point: faults.Fault,
    corpus: Path,
    reference: dict[str, list[tuple[object, ...]]],
    reference_store: Store,
    tmp_path: Path,
) -> None:
    store_dir = tmp_path / "store"
    faults.ACTIVE[point] = RuntimeError(f"injected at {point.value}")
    try:
        with pytest.raises(RuntimeError, match="injected"):
            run_pipeline([str(corpus)], CFG, store_dir, show_progress=False)
    finally:
        faults.ACTIVE.clear()
    partial = _keys(Store(store_dir)) if Store(store_dir).has("media") else {}
    assert len(partial.get("media", [])) < len(reference["media"])  # the crash really cut the run short
    summary = run_pipeline([str(corpus)], CFG, store_dir, show_progress=False)
    assert _keys(Store(store_dir)) == reference
    # the same rows, not only the same keys (the fake encoders' vectors are exact)
    assert [d for t in DATA for d in table_differences(Store(store_dir), reference_store, t, atol=0)] == []
    assert summary.n_ok + summary.n_quarantined + summary.n_skipped + summary.n_duplicates == summary.n_inputs
    again = run_pipeline([str(corpus)], CFG, store_dir, show_progress=False)
    hashed = [key for key in reference["media"] if not str(key[0]).startswith("uri:")]  # not empty.wav
    assert again.rows == {} and again.n_skipped == len(hashed)
