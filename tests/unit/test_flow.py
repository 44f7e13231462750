"""Farneback flow statistics on textures moved by a known number of pixels per frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmfs.config import FlowConfig
from mmfs.schemas.tables import MOTION_DIM, MOTION_FEATURES
from mmfs.transforms.video.flow import flow_between, flow_sequence, motion_vector
from mmfs.transforms.video.frames import SampledFrames, sample_frames
from tests import media_factory as mf

CFG = FlowConfig(work_width=96)


def translated(dx: float, dy: float, n: int = 3, width: int = 96, height: int = 64) -> SampledFrames:
    """n frames of one texture shifted by (dx, dy) pixels per frame, 30 frames per second."""
    paint = mf.translating_painter(width, height, dx, dy)
    return SampledFrames(
        indices=np.arange(n, dtype=np.int64),
        times_s=np.arange(n) / 30.0,
        frames=np.stack([paint(i, i / 30.0) for i in range(n)]),
        backend="test",
    )


def test_known_translation() -> None:
    pairs = flow_sequence(translated(3, -2), CFG)
    assert len(pairs) == 2
    first = pairs[0]
    assert (first.frame_index, first.next_frame_index) == (0, 1)
    assert first.t_s == 0.0 and first.dt_s == pytest.approx(1 / 30)
    for pair in pairs:
        assert pair.mean_dx == pytest.approx(3.0, abs=0.5)
        assert pair.mean_dy == pytest.approx(-2.0, abs=0.5)
        assert pair.median_mag == pytest.approx(np.hypot(3, 2), abs=0.5)
        assert pair.median_mag <= pair.p95_mag <= pair.max_mag
        assert pair.moving_frac > 0.8
        assert pair.orient_hist.dtype == np.float32 and pair.orient_hist.shape == (8,)
        assert pair.orient_hist.sum() == pytest.approx(1.0, abs=1e-5)
        assert int(np.argmax(pair.orient_hist)) == 7  # atan2(-2, 3) = 326 degrees: up and right
        assert pair.field.shape == (21, 32, 2) and pair.field.dtype == np.float16  # 32 cols, 96:64 aspect
        assert (pair.work_width, pair.work_height) == (96, 64)
        np.testing.assert_allclose(pair.field.astype(float).mean(axis=(0, 1)), [3.0, -2.0], atol=0.5)


@pytest.mark.parametrize(("dx", "dy", "peak"), [(1, 3, 1), (-3, 1, 3), (-1, -3, 5)])
def test_orientation_bins_follow_image_axes(dx: int, dy: int, peak: int) -> None:
    (pair,) = flow_sequence(translated(dx, dy, n=2), CFG)
    assert int(np.argmax(pair.orient_hist)) == peak
    assert pair.orient_hist[peak] > 0.5


def test_identical_frames_have_no_motion() -> None:
    still = translated(0, 0)
    (pair, _) = flow_sequence(still, CFG)
    assert pair.mean_mag < 0.05 and pair.p95_mag < 0.05  # Farneback leaves a few border pixels off zero
    assert pair.moving_frac == pytest.approx(0.0, abs=1e-3)
    assert pair.orient_hist.sum() in (0.0, pytest.approx(1.0))


def test_magnitudes_are_in_work_width_pixels() -> None:
    frames = translated(4, 0, n=2)
    flow = flow_between(frames.frames[0], frames.frames[1], FlowConfig(work_width=48))
    assert flow.shape == (32, 48, 2)
    (pair,) = flow_sequence(frames, FlowConfig(work_width=48))
    assert pair.mean_dx == pytest.approx(2.0, abs=0.4)  # 4 px at 96 wide is 2 px at 48 wide


def test_single_frame_has_no_pairs() -> None:
    assert flow_sequence(translated(3, -2, n=1), CFG) == []


def test_motion_vector_order() -> None:
    (pair, _) = flow_sequence(translated(3, -2), CFG)
    vec = motion_vector(pair)
    assert vec.shape == (MOTION_DIM,) == (len(MOTION_FEATURES),)
    assert vec.dtype == np.float32 and np.all(np.isfinite(vec))
    for i, name in enumerate(MOTION_FEATURES):
        if name.startswith("orient_"):
            expected = pair.orient_hist[int(name.split("_")[1])]
        else:
            expected = getattr(pair, name)
        assert vec[i] == pytest.approx(float(expected), rel=1e-6, abs=1e-7)


def test_flow_on_decoded_video(tmp_path: Path) -> None:
    clip = mf.write_video(
        tmp_path / "pan.mp4",
        times_s=mf.constant_rate_times(4, 30),
        width=96,
        height=64,
        painter=mf.translating_painter(96, 64, 3, -2),
    )
    sampled = sample_frames(clip, fps=30.0, max_frames=10, decode_short_side=64)
    pairs = flow_sequence(sampled, CFG)
    assert len(pairs) == 3
    assert np.median([p.mean_dx for p in pairs]) == pytest.approx(3.0, abs=0.5)
    assert np.median([p.mean_dy for p in pairs]) == pytest.approx(-2.0, abs=0.5)
    assert pairs[0].dt_s == pytest.approx(1 / 30, abs=1e-3)


def test_pairs_across_several_statistics_batches_match_each_pair_alone() -> None:
    """70 pairs go through three equal statistics batches; each row is what its flow gives on its own."""
    from mmfs.transforms.video.flow import _BATCH
    from mmfs.transforms.video.flow_stats import flow_stats

    n = 2 * _BATCH + 7
    frames = translated(1, 0.5, n=n + 1)
    pairs = flow_sequence(frames, CFG)
    assert [p.frame_index for p in pairs] == list(range(n))
    assert [p.next_frame_index for p in pairs] == list(range(1, n + 1))
    for k in (0, _BATCH - 1, _BATCH, n - 1):  # first and last of the batches
        alone = flow_stats(flow_between(frames.frames[k], frames.frames[k + 1], CFG), CFG)
        for name, value in vars(alone).items():
            np.testing.assert_allclose(getattr(pairs[k], name), value, rtol=1e-5, atol=1e-6, err_msg=name)
