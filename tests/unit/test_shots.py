"""Shot detection: hard cuts found within one frame of where they were made, under every decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmfs.transforms.video.shots import cut_scores, detect_shots, hsv_signatures, shots_from_scores
from tests import media_factory as mf

CUTS_S = (1.0, 2.0)
FPS = 30


@pytest.fixture(scope="module")
def cuts_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 30 fps with hard cuts at 1 s and 2 s; each shot's texture drifts (frames within differ)."""
    path = tmp_path_factory.mktemp("shots") / "cuts.mp4"
    return mf.write_video(
        path, times_s=mf.constant_rate_times(90, FPS), painter=mf.shot_painter(64, 48, CUTS_S)
    )


@pytest.mark.parametrize("backend", ["decord", "pyav", "opencv"])
def test_two_cuts_give_three_shots(cuts_clip: Path, backend: str) -> None:
    shots = detect_shots(cuts_clip, threshold=0.3, min_shot_s=0.4, work_size=32, backend=backend)
    assert len(shots) == 3
    starts = [s.start_s for s in shots]
    np.testing.assert_allclose(starts, [0.0, *CUTS_S], atol=1 / FPS)
    np.testing.assert_allclose([s.end_s for s in shots], [*CUTS_S, 3.0], atol=1 / FPS)
    assert [s.start_frame for s in shots] == [0, 30, 60]
    assert shots[0].cut_score == 0.0 and all(s.cut_score > 0.3 for s in shots[1:])


def test_scores_separate_cuts_from_motion(cuts_clip: Path) -> None:
    paint = mf.shot_painter(64, 48, CUTS_S)
    frames = np.stack([paint(i, i / FPS) for i in range(90)])
    scores = cut_scores(hsv_signatures(frames))
    assert scores[0] == 0.0
    assert set(np.nonzero(scores > 0.3)[0].tolist()) == {30, 60}
    assert np.delete(scores, [30, 60]).max() < 0.1  # the drift within a shot scores low


def test_min_shot_length_and_single_shot() -> None:
    times = np.arange(10) / 10
    scores = np.array([0, 0, 0.9, 0.9, 0, 0, 0, 0.8, 0, 0], dtype=np.float32)
    shots = shots_from_scores(times, np.arange(10), scores, threshold=0.5, min_shot_s=0.3, end_s=1.0)
    # 0.2 s is too close to the start, so the cut waits for the next high score (0.3 s)
    assert [(s.start_s, s.end_s) for s in shots] == [(0.0, 0.3), (0.3, 0.7), (0.7, 1.0)]
    one = shots_from_scores(times, np.arange(10), np.zeros(10), threshold=0.5, min_shot_s=0.3, end_s=1.0)
    assert [(s.shot_index, s.start_s, s.end_s) for s in one] == [(0, 0.0, 1.0)]
