"""Quarantine rows say why: error code, stage, probe detail; a failure seen again counts its attempts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmfs.config import config_from_dict
from mmfs.errors import ErrorCode
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store
from tests import media_factory as mf

pytestmark = pytest.mark.slow


def test_quarantine_rows_carry_detail_and_count_attempts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mf.write_wav(data / "tone.wav", duration_s=1.0)
    clip = mf.write_video(data / "clip.mp4", times_s=mf.constant_rate_times(20, 10), audio_tone_hz=300.0)
    mf.write_truncated(data / "cut.mp4", clip, keep_bytes=600)  # the header survives, the media does not
    (data / "empty.wav").write_bytes(b"")
    store_dir = tmp_path / "store"
    run_pipeline([str(data)], config_from_dict({}), store_dir, show_progress=False)
    rows = {Path(r["uri"]).name: r for r in Store(store_dir).read("quarantine").to_pylist()}
    assert set(rows) == {"cut.mp4", "empty.wav"}
    assert rows["empty.wav"]["error_code"] == ErrorCode.EMPTY_FILE and rows["empty.wav"]["attempts"] == 1
    cut = rows["cut.mp4"]
    detail = json.loads(cut["detail"])
    assert detail["bytes"] == 600 and detail["kind"] in ("video", "unknown")
    first_seen = cut["first_seen"]

    # a config change makes every item stale: the failures are met again and counted, not duplicated
    run_pipeline([str(data)], config_from_dict({"video": {"fps": 2.0}}), store_dir, show_progress=False)
    again = {Path(r["uri"]).name: r for r in Store(store_dir).read("quarantine").to_pylist()}
    assert set(again) == {"cut.mp4", "empty.wav"}
    assert again["cut.mp4"]["attempts"] == 2 and again["cut.mp4"]["first_seen"] == first_seen
    assert again["cut.mp4"]["last_seen"] > first_seen
