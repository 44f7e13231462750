"""Clip-level pooling: frame-embedding mean + std and motion mean + max per window, on any grid."""

from __future__ import annotations

import numpy as np
import pytest

from mmfs.schemas.tables import MOTION_DIM, Dims, clip_dim
from mmfs.transforms.align import AlignInputs, TimedVectors, align
from mmfs.transforms.video.action_pooling import action_vector, window_groups


def test_clip_vector_layout_and_values() -> None:
    frames = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    motion = np.array([np.arange(16), np.arange(16) * 3], dtype=np.float32)
    vec = action_vector(frames, motion)
    assert vec is not None and vec.shape == (2 * 3 + 2 * MOTION_DIM,) and vec.dtype == np.float32
    np.testing.assert_allclose(vec[:3], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(vec[3:6], [0.5, 0.5, 0.0])  # population std of {1, 0}
    np.testing.assert_allclose(vec[6:22], np.arange(16) * 2)
    np.testing.assert_allclose(vec[22:], np.arange(16) * 3)
    assert clip_dim(Dims(image=3, text=4, audio=5)) == vec.shape[0]


def test_no_frames_no_clip_and_no_pairs_zero_motion() -> None:
    assert action_vector(None, np.ones((1, 16))) is None
    assert action_vector(np.zeros((0, 3)), None) is None
    vec = action_vector(np.ones((1, 3), dtype=np.float32), None)
    assert vec is not None and not vec[6:].any()


def test_align_pools_each_window_whatever_its_bounds() -> None:
    """Segments of 2 s: frames and flow-pair midpoints are pooled by the window holding their time."""
    times = np.arange(6, dtype=np.float64)  # 1 fps for 6 s
    frames = np.eye(6, dtype=np.float32)
    motion = np.repeat(np.arange(5, dtype=np.float32)[:, None], 16, axis=1)  # pair k: all k
    inputs = AlignInputs(
        duration_s=6.0,
        visual=TimedVectors(times, frames),
        motion=TimedVectors(times[:-1] + 0.5, motion),
    )
    segments = align(inputs, segment_s=2.0, max_segments=100)
    assert len(segments) == 3
    for seg in segments:
        vec = seg.vectors["clip"]
        assert vec is not None
        k = seg.segment_index
        np.testing.assert_allclose(vec[:6], frames[2 * k : 2 * k + 2].mean(axis=0))
        np.testing.assert_allclose(vec[6:12], frames[2 * k : 2 * k + 2].std(axis=0))
        pairs = motion[2 * k : min(2 * k + 2, 5)]
        np.testing.assert_allclose(vec[12:28], pairs.mean(axis=0))
        np.testing.assert_allclose(vec[28:], pairs.max(axis=0))


def test_clip_groups_cut_frames_by_window() -> None:
    groups = window_groups(np.array([0.0, 0.4, 0.9, 1.0, 1.5, 3.2]), 1.0)
    assert [g.tolist() for g, _ in groups] == [[0, 1, 2], [3, 4], [5]]
    assert [t for _, t in groups] == pytest.approx([0.45, 1.25, 3.2])
    assert window_groups(np.array([]), 1.0) == []
