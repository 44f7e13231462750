"""Dense optical flow (OpenCV Farneback) between consecutive sampled frames, and motion statistics.

Frames are turned grey and resized to `work_width` first: flow cost grows with pixels, and motion
statistics at 160 px wide describe a scene as well as at full size. Magnitudes are in pixels at the
work width, per frame pair (not per second: `dt_s` travels beside them). Angles follow image axes,
x right and y down, so 90 degrees (bin 2) is straight down.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mmfs.config import FlowConfig
from mmfs.errors import NonFiniteFeature
from mmfs.schemas.tables import MOTION_FEATURES
from mmfs.transforms.frames import SampledFrames

ORIENT_BINS = 8


@dataclass
class FlowStats:
    """The statistics of one flow field, in pixels at the work width."""

    mean_mag: float
    median_mag: float
    p95_mag: float
    max_mag: float
    mean_dx: float
    mean_dy: float
    orient_hist: np.ndarray  # (8,) float32, magnitude-weighted, sums to 1 (zeros when nothing moves)
    moving_frac: float
    field: np.ndarray  # (field_size, field_size, 2) float16


@dataclass(kw_only=True)
class FlowPair(FlowStats):
    """Motion between two consecutive sampled frames: which frames, when, and its statistics."""

    frame_index: int
    next_frame_index: int
    t_s: float
    dt_s: float


def to_work_grey(rgb: np.ndarray, work_width: int) -> np.ndarray:
    """Grey uint8 image resized to the work width, aspect kept."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    if w == work_width:
        return grey
    interpolation = cv2.INTER_AREA if w > work_width else cv2.INTER_LINEAR
    return cv2.resize(grey, (work_width, max(1, round(h * work_width / w))), interpolation=interpolation)


def flow_between(prev_rgb: np.ndarray, next_rgb: np.ndarray, cfg: FlowConfig) -> np.ndarray:
    """The (h, w, 2) float32 flow from prev to next at the work width, in pixels."""
    return farneback(to_work_grey(prev_rgb, cfg.work_width), to_work_grey(next_rgb, cfg.work_width), cfg)


def farneback(prev_grey: np.ndarray, next_grey: np.ndarray, cfg: FlowConfig) -> np.ndarray:
    """Farneback flow between two grey images with the configured parameters."""
    out = np.zeros((*prev_grey.shape[:2], 2), dtype=np.float32)
    return cv2.calcOpticalFlowFarneback(
        prev_grey,
        next_grey,
        out,
        cfg.pyr_scale,
        cfg.levels,
        cfg.winsize,
        cfg.iterations,
        cfg.poly_n,
        cfg.poly_sigma,
        0,
    )


def flow_stats(flow: np.ndarray, cfg: FlowConfig) -> FlowStats:
    """Magnitude percentiles, mean vector, orientation histogram, moving fraction, small field."""
    if not np.all(np.isfinite(flow)):
        raise NonFiniteFeature("optical flow came out NaN or infinite")
    dx, dy = flow[..., 0], flow[..., 1]
    mag, ang = cv2.cartToPolar(dx, dy)  # angle in [0, 2pi), measured from +x towards +y (down)
    total = float(mag.sum())
    hist, _ = np.histogram(ang, bins=ORIENT_BINS, range=(0.0, 2 * np.pi), weights=mag)
    field = cv2.resize(flow, (cfg.field_size, cfg.field_size), interpolation=cv2.INTER_AREA)
    return FlowStats(
        mean_mag=float(mag.mean()),
        median_mag=float(np.median(mag)),
        p95_mag=float(np.percentile(mag, 95)),
        max_mag=float(mag.max()),
        mean_dx=float(dx.mean()),
        mean_dy=float(dy.mean()),
        orient_hist=(hist / total if total > 1e-9 else np.zeros(ORIENT_BINS)).astype(np.float32),
        moving_frac=float((mag > cfg.moving_threshold_px).mean()),
        field=field.astype(np.float16),
    )


def flow_sequence(frames: SampledFrames, cfg: FlowConfig) -> list[FlowPair]:
    """Flow between each pair of consecutive sampled frames (n - 1 pairs; none for one frame)."""
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
                **vars(stats),
            )
        )
    return pairs


def motion_vector(pair: FlowPair) -> np.ndarray:
    """The pair as a 16-d float32 vector in MOTION_FEATURES order (what `segments.motion` pools)."""
    values = [
        float(pair.orient_hist[int(name.removeprefix("orient_"))])
        if name.startswith("orient_")
        else float(getattr(pair, name))
        for name in MOTION_FEATURES
    ]
    return np.array(values, dtype=np.float32)
