"""Alignment onto the segment grid: counts, pooling, text overlap, images and documents."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmfs.transforms.align import AlignInputs, SpanVector, TimedVectors, align, segment_bounds


@pytest.mark.parametrize(
    ("duration", "seg", "expected"), [(14.0, 1.0, 14), (2.5, 1.0, 3), (0.3, 1.0, 1), (7.0, 2.0, 4)]
)
def test_segment_count_is_ceil(duration: float, seg: float, expected: int) -> None:
    bounds = segment_bounds(duration, seg, max_segments=1000)
    assert len(bounds) == expected == max(1, math.ceil(duration / seg))
    assert bounds[0][0] == 0.0 and bounds[-1][1] == pytest.approx(duration)


def _unit(i: int, d: int = 4) -> np.ndarray:
    v = np.zeros(d, dtype=np.float32)
    v[i] = 1.0
    return v


def test_frames_motion_audio_text_land_in_their_windows() -> None:
    inputs = AlignInputs(
        duration_s=3.0,
        visual=TimedVectors(np.array([0.0, 0.5, 1.2]), np.stack([_unit(0), _unit(1), _unit(2)])),
        motion=TimedVectors(np.array([0.5, 1.5]), np.array([[1.0] * 16, [3.0] * 16], dtype=np.float32)),
        audio=[
            SpanVector(0.0, 1.0, _unit(3)),
            SpanVector(1.0, 2.0, None),
            SpanVector(2.0, 3.0, _unit(0)),
        ],
        text=[SpanVector(0.5, 1.5, _unit(1), "spans two"), SpanVector(2.2, 2.8, _unit(2), "late")],
    )
    segs = align(inputs, segment_s=1.0, max_segments=100)
    assert [s.segment_index for s in segs] == [0, 1, 2]
    visual0 = segs[0].vectors["visual"]
    assert visual0 is not None and np.allclose(visual0, np.array([1, 1, 0, 0]) / np.sqrt(2))
    assert np.allclose(segs[1].vectors["visual"], _unit(2))
    assert segs[2].vectors["visual"] is None
    assert np.allclose(segs[0].vectors["motion"], 1.0) and np.allclose(segs[1].vectors["motion"], 3.0)
    assert segs[1].vectors["audio"] is None and np.allclose(segs[2].vectors["audio"], _unit(0))
    assert segs[0].transcript == segs[1].transcript == "spans two"
    assert segs[2].transcript == "late"
    assert segs[0].modalities == ["visual", "motion", "audio", "text"]
    assert segs[1].modalities == ["visual", "motion", "text"]
    assert np.allclose(segs[2].vectors["fused"], _unit(2))


def test_image_is_one_segment_at_zero_and_document_one_per_chunk() -> None:
    image = AlignInputs(
        duration_s=None,
        is_image=True,
        visual=TimedVectors(np.array([0.0]), _unit(0)[None]),
        label_vectors=TimedVectors(np.array([0.0]), _unit(1)[None], ["tabby, tiger cat"]),
    )
    (seg,) = align(image, segment_s=1.0, max_segments=10)
    assert (seg.start_s, seg.end_s) == (0.0, 0.0)
    assert np.allclose(seg.vectors["fused"], _unit(1)) and seg.label_text == "tabby, tiger cat"
    doc = AlignInputs(
        duration_s=None, text=[SpanVector(None, None, _unit(i), f"chunk {i}") for i in range(3)]
    )
    segs = align(doc, segment_s=1.0, max_segments=10)
    assert [s.transcript for s in segs] == ["chunk 0", "chunk 1", "chunk 2"]
    assert all(s.start_s is None for s in segs)


def test_untimed_text_overlaps_every_window() -> None:
    inputs = AlignInputs(duration_s=2.0, text=[SpanVector(None, None, _unit(1), "transcript")])
    segs = align(inputs, segment_s=1.0, max_segments=10)
    assert all(s.transcript == "transcript" for s in segs)
