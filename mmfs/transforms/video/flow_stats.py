"""Motion statistics of dense flow fields, taken in batches (docs/motion.md).

Every magnitude, shift and threshold is in pixels of the work-size frame (`work_width` x `work_height`,
both stored on each row), per frame pair. Angles follow image axes, x right and y down, so 90 degrees
(bin 2) is straight down. The mean vector and the stored field use every pixel (an area average keeps
the mean exactly); the magnitude statistics, orientation histogram, moving fraction and residual use a
regular sample of at most `stats_max_samples` pixels (every s-th both ways: every 4th at 160x90, 920
pixels). That is finer than the flow itself varies: DIS's fast preset solves on a 4 px grid and
Farneback smooths over a 15 px window, so the sample moves the statistics far less than the flow's own
error, and keeps them cheap beside DIS.

`FlowBatch` takes what the statistics need from each flow as soon as it is computed (its small field and
its sample, while the flow is still in cache), so the full flows are never held together; the
statistics of the batch are then a few array operations for all its pairs at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from mmfs.config import FlowConfig
from mmfs.errors import NonFiniteFeature
from mmfs.transforms.quantiles import linear_quantiles
from mmfs.transforms.video.flow_kernels import ORIENT_BINS, SAMPLE_COLUMNS, reduce_flow, sample_stats
from mmfs.transforms.video.flow_types import FlowStats
from mmfs.transforms.video.global_motion import (
    fit_camera,
    grid_shape,
    motion_columns,
    offsets_from_centre,
    sample_points,
)

__all__ = ["FlowBatch", "FlowStats", "field_shape", "flow_stats", "flow_stats_batch", "sample_step"]


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
    """`video.flow_stats` of same-size flow fields at once."""
    if not flows:
        return []
    batch = FlowBatch(flows[0].shape[:2], len(flows), cfg)
    for flow in flows:
        batch.add(flow)
    columns = batch.columns()
    return [FlowStats(**{name: values[i] for name, values in columns.items()}) for i in range(len(flows))]


class FlowBatch:
    """What the statistics need of up to `capacity` same-size (h, w, 2) flows, taken as each arrives."""

    def __init__(self, size: tuple[int, int], capacity: int, cfg: FlowConfig) -> None:
        h, w = size
        self.size, self.cfg, self.count = (h, w), cfg, 0
        self.rows, self.cols = field_shape(h, w, cfg)
        self.step = sample_step(h, w, cfg.stats_max_samples)
        self.fields = np.empty((capacity, self.rows, self.cols, 2), dtype=np.float32)
        self.sample_x = np.empty((capacity, -(-h // self.step), -(-w // self.step)), dtype=np.float32)
        self.sample_y = np.empty_like(self.sample_x)
        # blocks of whole pixels (160x90 into 32x18, the default): one compiled pass takes field and sample
        self.whole_blocks = self.rows <= h and self.cols <= w and h % self.rows == 0 and w % self.cols == 0
        # an area-average down keeps the mean exactly, so the small fields give the mean vectors
        self.means = None if self.rows <= h and self.cols <= w else np.empty((capacity, 2))
        grid_rows, grid_cols = grid_shape(h, w, cfg)
        self.grids = (
            None
            if self.rows >= grid_rows and self.cols >= grid_cols
            else np.empty((capacity, grid_rows, grid_cols, 2), dtype=np.float32)
        )

    @property
    def full(self) -> bool:
        return self.count == len(self.fields)

    def add(self, flow: np.ndarray) -> None:
        """Take the flow's small field and sample (and its mean and grid where the field cannot give them)."""
        k, step = self.count, self.step
        if self.whole_blocks:
            reduce_flow(np.ascontiguousarray(flow), step, self.fields[k], self.sample_x[k], self.sample_y[k])
        else:
            cv2.resize(flow, (self.cols, self.rows), dst=self.fields[k], interpolation=cv2.INTER_AREA)
            self.sample_x[k] = flow[::step, ::step, 0]
            self.sample_y[k] = flow[::step, ::step, 1]
        if self.means is not None:
            self.means[k] = flow.reshape(-1, 2).mean(axis=0, dtype=np.float64)
        if self.grids is not None:
            rows, cols = self.grids.shape[1:3]
            cv2.resize(flow, (cols, rows), dst=self.grids[k], interpolation=cv2.INTER_AREA)
        self.count += 1

    def clear(self) -> None:
        """Start the next batch in the same arrays."""
        self.count = 0

    def columns(self) -> dict[str, list[Any]]:
        """Every FlowStats field of the pairs added so far, as one list per field."""
        n, (h, w), cfg = self.count, self.size, self.cfg
        if n == 0:
            return {name: [] for name in FlowStats.__dataclass_fields__}
        fields = self.fields[:n]
        means = self.means[:n] if self.means is not None else _means(fields)
        if not np.isfinite(means).all():  # one NaN or Inf anywhere spoils its sum
            bad = int(np.flatnonzero(~np.isfinite(means).all(axis=1))[0])
            raise NonFiniteFeature(f"optical flow of pair {bad} of {n} came out NaN or infinite")
        sx, sy = self.sample_x[:n].reshape(n, -1), self.sample_y[:n].reshape(n, -1)
        grids = self.grids[:n] if self.grids is not None else _grids_of_fields(fields, grid_shape(h, w, cfg))
        params, inlier_frac = fit_camera(grids, (h, w), cfg)
        x, y = _sample_offsets(h, w, self.step)
        mag = np.empty_like(sx)
        hist = np.empty((n, ORIENT_BINS), dtype=np.float32)
        scalars = np.empty((n, len(SAMPLE_COLUMNS)))
        sample_stats(sx, sy, x, y, params, np.float32(cfg.moving_threshold_px), mag, hist, scalars)
        median, p95 = linear_quantiles(mag, (0.5, 0.95))
        columns: dict[str, list[Any]] = {
            "median_mag": median.tolist(),
            "p95_mag": p95.tolist(),
            "mean_dx": means[:, 0].tolist(),
            "mean_dy": means[:, 1].tolist(),
            "orient_hist": list(hist),
            "field": list(_half(fields)),
            "work_width": [w] * n,
            "work_height": [h] * n,
        }
        columns.update(zip(SAMPLE_COLUMNS, scalars.T.tolist(), strict=True))
        columns.update({name: v.tolist() for name, v in motion_columns(params, inlier_frac).items()})
        return columns


def _means(fields: np.ndarray) -> np.ndarray:
    """(n, 2) float64 mean vector of each (rows, cols, 2) field: one BLAS product, not a strided reduce."""
    flat = fields.reshape(len(fields), -1, 2)
    return np.matmul(np.full((1, flat.shape[1]), 1 / flat.shape[1], dtype=np.float32), flat)[:, 0].astype(
        float
    )


def _half(values: np.ndarray) -> np.ndarray:
    """`values.astype(np.float16)`, bit for bit, through OpenCV's vectorised conversion (10x numpy's here)."""
    flat = values.reshape(len(values), -1)
    # x - 0 keeps the sign of -0 (x + 0 would not); a scalar src2 is missing from the stubs
    half = cv2.subtract(flat, 0.0, dtype=cv2.CV_16F)  # type: ignore[call-overload]
    return np.asarray(half).reshape(values.shape)


def _grids_of_fields(fields: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(n, grid_rows, grid_cols, 2) area averages of (n, rows, cols, 2) fields at least as large as the grid.

    At whole-number ratios the blocks never straddle two fields, so the stacked fields resize in one call.
    """
    n, rows, cols = fields.shape[:3]
    grid_rows, grid_cols = grid
    if rows % grid_rows == 0 and cols % grid_cols == 0:
        tall = cv2.resize(
            fields.reshape(n * rows, cols, 2), (grid_cols, n * grid_rows), interpolation=cv2.INTER_AREA
        )
        return tall.reshape(n, grid_rows, grid_cols, 2)
    return np.stack([cv2.resize(f, (grid_cols, grid_rows), interpolation=cv2.INTER_AREA) for f in fields])


@functools.lru_cache(maxsize=16)
def _sample_offsets(height: int, width: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """X and Y from the frame centre of the pixels `flow[::step, ::step]` holds, cached per size."""
    return offsets_from_centre(sample_points(height, width, step), (height, width))
