"""A decoder that hangs is killed at its time budget, one that crashes costs its item only; no orphans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from mmfs.errors import ErrorCode
from mmfs.store.db import Store
from tests import media_factory as mf
from tests.processes import wait_until_gone

pytestmark = pytest.mark.slow


def _run(data: Path, store: Path, fault: str, token: str) -> tuple[subprocess.CompletedProcess[str], float]:
    config = data.parent / "config.yaml"
    config.write_text(
        yaml.safe_dump({"limits": {"decode_timeout_s": 4.0, "decode_timeout_per_media_s": 0.0}})
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MMFS_FAULT": fault, "MMFS_TEST_TOKEN": token}
    cmd = [sys.executable, "-m", "mmfs.cli", "run", str(data), "--store", str(store), "--config", str(config)]
    start = time.monotonic()
    done = subprocess.run([*cmd, "--json", "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    return done, time.monotonic() - start


@pytest.mark.parametrize(
    ("fault", "code"),
    [("hang", ErrorCode.TIMEOUT), ("kill", ErrorCode.DECODER_CRASHED)],
    ids=["hung-decoder", "crashing-decoder"],
)
def test_a_stuck_or_crashing_decoder_costs_one_item(tmp_path: Path, fault: str, code: ErrorCode) -> None:
    data = tmp_path / "data"
    mf.write_image(data / "photo.png", seed=3)
    mf.write_wav(data / "tone.wav", duration_s=1.0)
    mf.write_wav(data / "stuck.wav", duration_s=1.0, freq_hz=300.0)
    mf.write_text(data / "note.txt", "The lighthouse keeper logs every ship.")
    token = uuid.uuid4().hex
    done, _ = _run(data, tmp_path / "store", f"mid_transform:{fault}@stuck.wav", token)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert (summary["n_ok"], summary["n_quarantined"]) == (3, 1)
    store = Store(tmp_path / "store")
    rows = store.read("quarantine").to_pylist()
    assert [(Path(r["uri"]).name, r["stage"], r["error_code"]) for r in rows] == [
        ("stuck.wav", "decode", int(code))
    ]
    if fault == "hang":
        assert rows[0]["retryable"] and "budget of 4 s" in rows[0]["message"]
    media = {Path(r["uri"]).name: r["status"] for r in store.read("media").to_pylist()}
    assert media == {"photo.png": "ok", "tone.wav": "ok", "stuck.wav": "failed", "note.txt": "ok"}
    assert wait_until_gone(token) == []  # no decoder left behind


def test_a_bug_in_a_decode_worker_stops_the_run_like_in_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mf.write_wav(data / "tone.wav", duration_s=1.0)
    mf.write_wav(data / "buggy.wav", duration_s=1.0, freq_hz=300.0)
    token = uuid.uuid4().hex
    done, _ = _run(data, tmp_path / "store", "mid_transform:raise@buggy.wav", token)
    assert done.returncode == 1
    assert "buggy.wav raised an unexpected error" in done.stderr.strip().splitlines()[-1]
    assert wait_until_gone(token) == []


def test_an_item_whose_decoder_crashed_is_retried_by_later_runs_up_to_max_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crashed decoder (like a timeout) may not recur: the next runs try the item again, counting
    attempts, until the limit; once the decoder behaves, the item lands and its quarantine row goes."""
    from mmfs import faults
    from mmfs.config import config_from_dict
    from mmfs.pipelines.run import run_pipeline
    from tests.fake_encoders import FAKE_ENCODERS

    data = tmp_path / "data"
    mf.write_wav(data / "stuck.wav", duration_s=1.0, freq_hz=300.0)
    store = tmp_path / "store"
    settings = {
        "limits": {"max_attempts": 3},
        "encoders": FAKE_ENCODERS,
    }
    cfg = config_from_dict(settings)
    monkeypatch.setenv("MMFS_FAULT", "mid_transform:kill@stuck.wav")
    attempts, skipped = [], []
    try:
        for _ in range(4):
            summary = run_pipeline([str(data)], cfg, store, show_progress=False)
            (row,) = Store(store).read("quarantine", ["stage", "error_code", "attempts"]).to_pylist()
            assert (row["stage"], row["error_code"]) == ("decode", int(ErrorCode.DECODER_CRASHED))
            attempts.append(row["attempts"])
            skipped.append(summary.n_skipped)
        assert attempts == [1, 2, 3, 3]  # tried by three runs, then left alone
        assert skipped == [0, 0, 0, 1]  # after its third try the item is left alone
        # the same bytes under a name the fault does not match: the decoder behaves, the item lands
        (data / "stuck.wav").rename(data / "calm.wav")
        cfg = config_from_dict({**settings, "limits": {**settings["limits"], "max_attempts": 4}})
        summary = run_pipeline([str(data)], cfg, store, show_progress=False)
    finally:
        monkeypatch.delenv("MMFS_FAULT")
        faults.ACTIVE.clear()
    assert (summary.n_ok, summary.n_skipped) == (1, 0)
    assert Store(store).count("quarantine") == 0
    (media,) = Store(store).read("media", ["uri", "status"]).to_pylist()
    assert (Path(media["uri"]).name, media["status"]) == ("calm.wav", "ok")
