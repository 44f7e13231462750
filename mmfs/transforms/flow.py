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

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mmfs.config import FlowConfig
from mmfs.errors import NonFiniteFeature
from mmfs.schemas.tables import MOTION_FEATURES
from mmfs.transforms.flow_methods import flow_fn
from mmfs.transforms.frames import SampledFrames
from mmfs.transforms.global_motion import (
    camera_design,
    fit_params,
    grid_shape,
    motions_from_params,
    sample_points,
    transposed,
)

ORIENT_BINS = 8
_BATCH = 32  # at most this many flow pairs have their statistics computed together
_BATCH_BYTES = 16 << 20  # and at most this much flow (8 pairs at 640x360): bounded memory
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
    return flow_stats_batch([flow], cfg)[0]


def flow_stats_batch(flows: Sequence[np.ndarray], cfg: FlowConfig) -> list[FlowStats]:
    """`flow_stats` of same-size flow fields at once: a few array operations for the whole batch.

    Per-pair numpy calls cost as much as DIS's fast flow at 160 px; batching shares them.
    """
    n = len(flows)
    if n == 0:
        return []
    h, w = flows[0].shape[:2]
    rows, cols = field_shape(h, w, cfg)
    # one flow at a time: interleaving whole flows into one array costs more than the resizes
    fields = np.stack([cv2.resize(f, (cols, rows), interpolation=cv2.INTER_AREA) for f in flows])
    # an area-average down keeps the mean exactly, so the small fields give the mean vectors for free
    whole = fields if rows <= h and cols <= w else np.stack(flows)
    means = whole.reshape(n, -1, 2).mean(axis=1, dtype=np.float64)
    if not np.isfinite(means).all():  # one NaN or Inf anywhere spoils its sum
        bad = int(np.flatnonzero(~np.isfinite(means).all(axis=1))[0])
        raise NonFiniteFeature(f"optical flow of pair {bad} of {n} came out NaN or infinite")
    step = sample_step(h, w, cfg.stats_max_samples)
    sample = np.stack([f[::step, ::step] for f in flows]).reshape(n, -1, 2)
    m = sample.shape[1]
    sx, sy = np.ascontiguousarray(sample[..., 0]), np.ascontiguousarray(sample[..., 1])
    mag, ang = cv2.cartToPolar(sx, sy)
    bins = (ang * _BIN_SCALE).astype(np.intp) % ORIENT_BINS + np.arange(n)[:, None] * ORIENT_BINS
    hist = np.bincount(bins.ravel(), weights=mag.ravel(), minlength=n * ORIENT_BINS).reshape(n, ORIENT_BINS)
    totals = hist.sum(axis=1, keepdims=True)
    hist = np.divide(hist, totals, out=np.zeros_like(hist), where=totals > 1e-9).astype(np.float32)
    median, p95 = _percentiles(mag, (0.5, 0.95))
    grid_rows, grid_cols = grid_shape(h, w, cfg)
    if rows >= grid_rows and cols >= grid_cols:  # the small fields average down to the grid cheaply
        grids = _area(
            np.ascontiguousarray(fields.transpose(1, 2, 0, 3)).reshape(rows, cols, 2 * n),
            grid_rows,
            grid_cols,
            n,
        )
    else:
        grids = np.stack([cv2.resize(f, (grid_cols, grid_rows), interpolation=cv2.INTER_AREA) for f in flows])
    params = fit_params(grids, (h, w), cfg)
    motions = motions_from_params(params, grids, (h, w), cfg)
    design_x, design_y = _sample_design(h, w, step)
    p32 = params.astype(np.float32)
    rmag = cv2.magnitude(sx - p32 @ design_x, sy - p32 @ design_y)
    moving = np.count_nonzero(mag > cfg.moving_threshold_px, axis=1) / m
    r_moving = np.count_nonzero(rmag > cfg.moving_threshold_px, axis=1) / m
    columns = np.stack([mag.mean(axis=1), median, p95, mag.max(axis=1), moving, rmag.mean(axis=1), r_moving])
    small = fields.astype(np.float16)
    out = []
    for i, (mean_mag, med, p95_i, max_mag, mov, r_mean, r_mov) in enumerate(columns.T.tolist()):
        motion = motions[i]
        out.append(
            FlowStats(
                mean_mag=mean_mag,
                median_mag=med,
                p95_mag=p95_i,
                max_mag=max_mag,
                mean_dx=float(means[i, 0]),
                mean_dy=float(means[i, 1]),
                orient_hist=hist[i],
                moving_frac=mov,
                field=small[i],
                global_dx=motion.dx,
                global_dy=motion.dy,
                global_rotation_deg=motion.rotation_deg,
                global_scale=motion.scale,
                global_inlier_frac=motion.inlier_frac,
                residual_mean_mag=r_mean,
                residual_moving_frac=r_mov,
                work_width=w,
                work_height=h,
            )
        )
    return out


def _area(stack: np.ndarray, rows: int, cols: int, n: int) -> np.ndarray:
    """(n, rows, cols, 2) area averages of an (h, w, 2n) stack of flows: one resize for the batch.

    OpenCV averages any number of channels at whole-number ratios only; otherwise a flow at a time.
    """
    h, w = stack.shape[:2]
    if n <= 2 or (h % rows == 0 and w % cols == 0):
        return _split(
            cv2.resize(stack, (cols, rows), interpolation=cv2.INTER_AREA).reshape(rows, cols, 2 * n), n
        )
    return np.stack(
        [
            cv2.resize(stack[..., 2 * i : 2 * i + 2], (cols, rows), interpolation=cv2.INTER_AREA)
            for i in range(n)
        ]
    )


def _split(stack: np.ndarray, n: int) -> np.ndarray:
    """An (h, w, 2n) stack as (n, h, w, 2), contiguous."""
    h, w = stack.shape[:2]
    return np.ascontiguousarray(stack.reshape(h, w, n, 2).transpose(2, 0, 1, 3))


@functools.lru_cache(maxsize=16)
def _sample_design(height: int, width: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The camera model at the sampled pixels as (4, m) float32 x and y parts, cached per size."""
    design_t = transposed(camera_design(sample_points(height, width, step), (height, width)))
    parts = (
        np.ascontiguousarray(design_t[:, 0::2], np.float32),
        np.ascontiguousarray(design_t[:, 1::2], np.float32),
    )
    for part in parts:
        part.setflags(write=False)
    return parts[0], parts[1]


def _percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """np.percentile's linear interpolation at fractions `qs` along the last axis, from one partial sort."""
    n = values.shape[-1]
    positions = [q * (n - 1) for q in qs]
    kth = sorted({min(n - 1, int(p) + d) for p in positions for d in (0, 1)})
    part = np.partition(values, kth, axis=-1)
    out = []
    for p in positions:
        lo = int(p)
        hi = min(n - 1, lo + 1)
        out.append(part[..., lo] + (part[..., hi] - part[..., lo]) * (p - lo))
    return out


def flow_sequence(frames: SampledFrames, cfg: FlowConfig) -> list[FlowPair]:
    """Flow between each pair of consecutive sampled frames (n - 1 pairs; none for one frame).

    Flows are computed pair by pair and their statistics in batches: up to `_BATCH` pairs whose flows
    together fit in `_BATCH_BYTES` (32 pairs at 160x90 and 320x180, 8 at 640x360).
    """
    compute = flow_fn(cfg)
    pairs: list[FlowPair] = []
    flows: list[np.ndarray] = []
    starts: list[int] = []
    prev = None
    for i, rgb in enumerate(frames.frames):
        grey = to_work_grey(rgb, cfg.work_width)  # each frame made grey once, not once per pair
        if prev is not None:
            flows.append(compute(prev, grey))
            starts.append(i - 1)
        prev = grey
        batch = max(1, min(_BATCH, _BATCH_BYTES // flows[0].nbytes)) if flows else _BATCH
        if len(flows) >= batch or (i == len(frames.frames) - 1 and flows):
            for k, stats in zip(starts, flow_stats_batch(flows, cfg), strict=True):
                pairs.append(
                    FlowPair(
                        frame_index=int(frames.indices[k]),
                        next_frame_index=int(frames.indices[k + 1]),
                        t_s=float(frames.times_s[k]),
                        dt_s=float(frames.times_s[k + 1] - frames.times_s[k]),
                        **vars(stats),
                    )
                )
            flows, starts = [], []
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
