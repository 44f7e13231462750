"""Dense optical flow (OpenCV Farneback) between consecutive sampled frames, and motion statistics.

Frames are turned grey and shrunk to `work_width` first: flow cost grows with pixels, and motion
statistics at 160 px wide describe a scene as well as at full size. Magnitudes are in pixels at the
work width, per frame pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mmfs.config import FlowConfig
from mmfs.schemas.tables import MOTION_FEATURES
from mmfs.transforms.frames import SampledFrames

ORIENT_BINS = 8


@dataclass
class FlowPair:
    """Motion between two consecutive sampled frames."""

    frame_index: int
    next_frame_index: int
    t_s: float
    dt_s: float
    mean_mag: float
    median_mag: float
    p95_mag: float
    max_mag: float
    mean_dx: float
    mean_dy: float
    orient_hist: np.ndarray  # (8,) magnitude-weighted, sums to 1 (zeros when nothing moves)
    moving_frac: float
    field: np.ndarray  # (field_size, field_size, 2) float16


def to_work_grey(rgb: np.ndarray, work_width: int) -> np.ndarray:
    """Grey image resized to the work width (aspect kept)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    if w == work_width:
        return grey
    size = (work_width, max(1, round(h * work_width / w)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def farneback(prev_grey: np.ndarray, next_grey: np.ndarray, cfg: FlowConfig) -> np.ndarray:
    """The (h, w, 2) flow field from prev to next, in pixels."""
    return cv2.calcOpticalFlowFarneback(
        prev_grey,
        next_grey,
        None,
        cfg.pyr_scale,
        cfg.levels,
        cfg.winsize,
        cfg.iterations,
        cfg.poly_n,
        cfg.poly_sigma,
        0,
    )


def flow_stats(flow: np.ndarray, cfg: FlowConfig) -> dict[str, object]:
    """Magnitude percentiles, mean vector, orientation histogram, moving fraction, small field."""
    dx, dy = flow[..., 0], flow[..., 1]
    mag, ang = cv2.cartToPolar(dx, dy)
    total = float(mag.sum())
    hist, _ = np.histogram(ang, bins=ORIENT_BINS, range=(0.0, 2 * np.pi), weights=mag)
    return {
        "mean_mag": float(mag.mean()),
        "median_mag": float(np.median(mag)),
        "p95_mag": float(np.percentile(mag, 95)),
        "max_mag": float(mag.max()),
        "mean_dx": float(dx.mean()),
        "mean_dy": float(dy.mean()),
        "orient_hist": (hist / total if total > 1e-9 else np.zeros(ORIENT_BINS)).astype(np.float32),
        "moving_frac": float((mag > cfg.moving_threshold_px).mean()),
        "field": cv2.resize(flow, (cfg.field_size, cfg.field_size), interpolation=cv2.INTER_AREA).astype(
            np.float16
        ),
    }


def flow_sequence(frames: SampledFrames, cfg: FlowConfig) -> list[FlowPair]:
    """Flow between each pair of consecutive sampled frames (n - 1 pairs)."""
    greys = [to_work_grey(f, cfg.work_width) for f in frames.frames]
    pairs = []
    for i in range(len(greys) - 1):
        stats = flow_stats(farneback(greys[i], greys[i + 1], cfg), cfg)
        pairs.append(
            FlowPair(
                frame_index=int(frames.indices[i]),
                next_frame_index=int(frames.indices[i + 1]),
                t_s=float(frames.times_s[i]),
                dt_s=float(frames.times_s[i + 1] - frames.times_s[i]),
                **stats,  # type: ignore[arg-type]
            )
        )
    return pairs


def motion_vector(pair: FlowPair) -> np.ndarray:
    """The pair as a 16-d vector in MOTION_FEATURES order (what `segments.motion` pools)."""
    scalars = [float(getattr(pair, name)) for name in MOTION_FEATURES[:8]]
    vec = np.concatenate([np.array(scalars, dtype=np.float32), pair.orient_hist.astype(np.float32)])
    assert vec.shape == (len(MOTION_FEATURES),)
    return vec
