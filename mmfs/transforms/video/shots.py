"""Shot (hard cut) detection: HSV-histogram distance between consecutive frames of a dense low-res pass.

Every frame is decoded at a small width (scaled inside the decoder) and reduced to a 32-bin HSV
histogram (16 hue, 8 saturation, 8 value bins, each part summing to 1); the cut score of a frame is the
mean over the three parts of half the L1 distance to the previous frame's, in [0, 1]. A frame whose
score passes the threshold, at least `min_shot_s` after the last cut, starts a new shot. Only the
histograms are kept, so memory stays flat however long the video. Gradual transitions (fades,
dissolves) spread their change over many frames and are not cut.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the decoders (PyAV, decord) load with detect_shots, not with shot_bounds
    from mmfs.transforms.video.frames import Backend, SampledFrames

HIST_BINS = ((0, 16, 180), (1, 8, 256), (2, 8, 256))  # (HSV channel, bins, range end) per part


@dataclass(frozen=True)
class Shot:
    """One shot: [start_s, end_s), the decoder index of its first frame, and the score of the cut into it."""

    shot_index: int
    start_s: float
    end_s: float
    start_frame: int
    cut_score: float  # 0 for the first shot (no cut into it)


def hsv_signatures(frames: np.ndarray) -> np.ndarray:
    """(n, 32) float32: each RGB frame's hue, saturation and value histograms, each normalised to 1."""
    import cv2

    out = np.empty((len(frames), sum(b for _, b, _ in HIST_BINS)), dtype=np.float32)
    for i, rgb in enumerate(frames):
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
        parts = [cv2.calcHist([hsv], [c], None, [bins], [0, top]).ravel() for c, bins, top in HIST_BINS]
        out[i] = np.concatenate([p / max(float(p.sum()), 1.0) for p in parts])
    return out


def cut_scores(signatures: np.ndarray) -> np.ndarray:
    """Per frame, the histogram distance to the previous frame in [0, 1] (0 for the first)."""
    scores = np.zeros(len(signatures), dtype=np.float32)
    if len(signatures) < 2:
        return scores
    diff = np.abs(np.diff(signatures, axis=0))
    edges = np.cumsum([0] + [b for _, b, _ in HIST_BINS])
    parts = [0.5 * diff[:, a:b].sum(axis=1) for a, b in itertools.pairwise(edges)]
    scores[1:] = np.mean(parts, axis=0)
    return scores


def shots_from_scores(
    times_s: np.ndarray,
    indices: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float,
    min_shot_s: float,
    end_s: float,
) -> list[Shot]:
    """Cut where the score passes the threshold (not within min_shot_s of the last cut); the shots between."""
    starts = [0]
    for i in range(1, len(scores)):
        if scores[i] > threshold and times_s[i] - times_s[starts[-1]] >= min_shot_s:
            starts.append(i)
    bounds = [float(times_s[i]) for i in starts[1:]] + [max(end_s, float(times_s[-1]))]
    return [
        Shot(
            k,
            0.0 if k == 0 else float(times_s[i]),
            bounds[k],
            int(indices[i]),
            float(scores[i]) if k else 0.0,
        )
        for k, i in enumerate(starts)
    ]


def detect_shots(
    path: str | Path,
    *,
    threshold: float,
    min_shot_s: float,
    work_size: int,
    rotation: int = 0,
    duration_s: float | None = None,
    backend: Backend = "auto",
) -> list[Shot]:
    """The shots of a video from a dense pass over every frame with its short side at `work_size`."""
    from mmfs.transforms.video.frames import iter_frames

    stream = iter_frames(
        path,
        fps=1.0,
        max_frames=10**9,
        decode_short_side=work_size,
        rotation=rotation,
        duration_s=duration_s,
        backend=backend,
        fallback=True,
        sampling="every_k",
        every_k=1,
    )
    times, indices, signatures = _signatures(stream)
    if not len(times):
        return []
    end = duration_s or float(times[-1]) + (float(np.median(np.diff(times))) if len(times) > 1 else 0.0)
    return shots_from_scores(
        times, indices, cut_scores(signatures), threshold=threshold, min_shot_s=min_shot_s, end_s=end
    )


def _signatures(chunks: Iterable[SampledFrames]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, indices and histograms of every frame; the pixels of each chunk are dropped at once."""
    times: list[np.ndarray] = []
    indices: list[np.ndarray] = []
    sigs: list[np.ndarray] = []
    for chunk in chunks:
        times.append(chunk.times_s)
        indices.append(chunk.indices)
        sigs.append(hsv_signatures(chunk.frames))
    if not times:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros((0, 32), np.float32)
    return np.concatenate(times), np.concatenate(indices), np.concatenate(sigs)


def shot_bounds(shots: Sequence[Shot]) -> list[tuple[float, float]]:
    """The shots as (start_s, end_s) segment bounds for `align.grid: shots`."""
    return [(s.start_s, s.end_s) for s in shots]
