"""Dense optical flow between consecutive sampled frames, and its motion statistics (docs/motion.md).

Frames are turned grey and resized to `work_width` first: flow cost grows with pixels, and motion
statistics at 160 px wide describe a scene as well as at full size. The engine is `flow.method`
(Farneback, DIS fast or DIS medium). Every magnitude, shift and threshold is in pixels of that
work-size frame (`work_width` x `work_height`, both stored on each row), per frame pair (not per second:
`dt_s` travels beside them). Angles follow image axes, x right and y down, so 90 degrees (bin 2) is
straight down. The mean vector and the field use every pixel; the magnitude statistics, orientation
histogram, moving fraction and residual use a regular sample of at most `stats_max_samples` pixels
(every s-th both ways: every pixel up to 64x64, every 2nd at 160x90), which on a smooth flow field moves
them far less than the flow's own error and keeps the statistics cheap beside DIS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from mmfs.config import FlowConfig
from mmfs.errors import NonFiniteFeature
from mmfs.schemas.tables import MOTION_FEATURES
from mmfs.transforms.flow_methods import flow_fn
from mmfs.transforms.frames import SampledFrames
from mmfs.transforms.global_motion import fit_global_motion, residual_at, sample_points

ORIENT_BINS = 8
# the per-pair columns beside the magnitudes: work size, camera motion and residual (object) motion
FLOW_MOTION_COLUMNS = (
    "work_width",
    "work_height",
    "global_dx",
    "global_dy",
    "global_rotation_deg",
    "global_scale",
    "global_inlier_frac",
    "residual_mean_mag",
    "residual_moving_frac",
)
_BIN_SCALE = ORIENT_BINS / (2 * np.pi)


@dataclass
class FlowStats:
    """The statistics of one flow field, in pixels at the work size."""

    mean_mag: float
    median_mag: float
    p95_mag: float
    max_mag: float
    mean_dx: float
    mean_dy: float
    orient_hist: np.ndarray  # (8,) float32, magnitude-weighted, sums to 1 (zeros when nothing moves)
    moving_frac: float
    field: np.ndarray  # (field_rows, field_size, 2) float16
    global_dx: float  # camera motion: shift of the frame centre
    global_dy: float
    global_rotation_deg: float  # counter-clockwise on screen > 0
    global_scale: float  # > 1: zoom in
    global_inlier_frac: float
    residual_mean_mag: float  # object motion: the flow left once the camera motion is removed
    residual_moving_frac: float
    work_width: int
    work_height: int


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
    """The (h, w, 2) float32 flow from prev to next at the work width, in pixels, by `cfg.method`."""
    return flow_fn(cfg)(to_work_grey(prev_rgb, cfg.work_width), to_work_grey(next_rgb, cfg.work_width))


def field_shape(height: int, width: int, cfg: FlowConfig) -> tuple[int, int]:
    """(rows, cols) of the stored field: `field_size` columns, rows from `field_rows` or the aspect."""
    rows = cfg.field_rows or max(1, round(cfg.field_size * height / width))
    return rows, cfg.field_size


def sample_step(height: int, width: int, max_samples: int) -> int:
    """The stride s, both ways, that leaves at most `max_samples` pixels."""
    return max(1, math.ceil(math.sqrt(height * width / max_samples)))


def flow_stats(flow: np.ndarray, cfg: FlowConfig) -> FlowStats:
    """Magnitudes, mean vector, orientations, moving share, small field, camera and residual motion."""
    h, w = flow.shape[:2]
    rows, cols = field_shape(h, w, cfg)
    field = cv2.resize(flow, (cols, rows), interpolation=cv2.INTER_AREA)
    # an area-average down keeps the mean exactly, so the small field gives the mean vector for free
    mean_dx, mean_dy = cv2.mean(field if rows <= h and cols <= w else flow)[:2]
    if not (math.isfinite(mean_dx) and math.isfinite(mean_dy)):  # one NaN or Inf anywhere spoils the sum
        raise NonFiniteFeature("optical flow came out NaN or infinite")
    step = sample_step(h, w, cfg.stats_max_samples)
    sample = np.ascontiguousarray(flow[::step, ::step]).reshape(-1, 2)
    mag, ang = cv2.cartToPolar(sample[:, 0], sample[:, 1])  # angle from +x towards +y (down)
    mag, ang = mag.ravel(), ang.ravel()
    hist = np.bincount((ang * _BIN_SCALE).astype(np.intp) % ORIENT_BINS, weights=mag, minlength=ORIENT_BINS)
    total = float(hist.sum())
    median, p95 = _percentiles(mag, (0.5, 0.95))
    motion = fit_global_motion(flow, cfg, field)
    resid = residual_at(sample, motion, sample_points(h, w, step))
    rmag = cv2.magnitude(resid[:, 0], resid[:, 1])
    return FlowStats(
        mean_mag=float(mag.mean()),
        median_mag=median,
        p95_mag=p95,
        max_mag=float(mag.max()),
        mean_dx=float(mean_dx),
        mean_dy=float(mean_dy),
        orient_hist=(hist / total if total > 1e-9 else np.zeros(ORIENT_BINS)).astype(np.float32),
        moving_frac=float(np.count_nonzero(mag > cfg.moving_threshold_px) / mag.size),
        field=field.astype(np.float16),
        global_dx=motion.dx,
        global_dy=motion.dy,
        global_rotation_deg=motion.rotation_deg,
        global_scale=motion.scale,
        global_inlier_frac=motion.inlier_frac,
        residual_mean_mag=float(rmag.mean()),
        residual_moving_frac=float(np.count_nonzero(rmag > cfg.moving_threshold_px) / rmag.size),
        work_width=w,
        work_height=h,
    )


def _percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """np.percentile's linear interpolation at fractions `qs`, from one partial sort."""
    n = values.size
    positions = [q * (n - 1) for q in qs]
    kth = sorted({min(n - 1, int(p) + d) for p in positions for d in (0, 1)})
    part = np.partition(values, kth)
    out = []
    for p in positions:
        lo = int(p)
        hi = min(n - 1, lo + 1)
        out.append(float(part[lo] + (part[hi] - part[lo]) * (p - lo)))
    return out


def flow_sequence(frames: SampledFrames, cfg: FlowConfig) -> list[FlowPair]:
    """Flow between each pair of consecutive sampled frames (n - 1 pairs; none for one frame)."""
    compute = flow_fn(cfg)
    pairs: list[FlowPair] = []
    prev = None
    for i, rgb in enumerate(frames.frames):
        grey = to_work_grey(rgb, cfg.work_width)  # each frame made grey once, not once per pair
        if prev is not None:
            stats = flow_stats(compute(prev, grey), cfg)
            pairs.append(
                FlowPair(
                    frame_index=int(frames.indices[i - 1]),
                    next_frame_index=int(frames.indices[i]),
                    t_s=float(frames.times_s[i - 1]),
                    dt_s=float(frames.times_s[i] - frames.times_s[i - 1]),
                    **vars(stats),
                )
            )
        prev = grey
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
