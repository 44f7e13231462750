"""Camera (global) motion of a flow field, and the residual (object) motion left once it is removed.

The camera motion is fitted on a coarse grid of area-averaged flow vectors: a RANSAC similarity
(shift, rotation, uniform scale: `cv2.estimateAffinePartial2D`), or the median flow (a pure shift).
RANSAC drops the cells a moving object covers, so a pan with a person walking through it gives the pan.

Conventions, all in pixels of the work-size frame (x right, y down, pixel centres at integer coordinates):
`dx, dy` is the displacement of the frame's centre; `rotation_deg` is positive for a counter-clockwise
turn as seen on screen (OpenCV's `getRotationMatrix2D` convention), negative for clockwise; `scale` > 1
is a zoom in. The fit is deterministic (OpenCV's RANSAC seeds its generator with a constant).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from mmfs.config import FlowConfig


@dataclass(frozen=True)
class GlobalMotion:
    """A fitted camera motion: the 2x3 map from the first frame's points to the second's, summarised."""

    matrix: np.ndarray  # (2, 3) float64
    dx: float
    dy: float
    rotation_deg: float
    scale: float
    inlier_frac: float  # grid cells the model explains within ransac_threshold_px


@functools.lru_cache(maxsize=64)
def grid_points(height: int, width: int, cols: int, rows: int) -> np.ndarray:
    """(rows * cols, 2) float32 centres, in work pixels, of the cells that INTER_AREA averages over."""
    xs = (np.arange(cols) + 0.5) * width / cols - 0.5
    ys = (np.arange(rows) + 0.5) * height / rows - 0.5
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    points.setflags(write=False)  # cached and shared
    return points


@functools.lru_cache(maxsize=64)
def sample_points(height: int, width: int, step: int) -> np.ndarray:
    """(n, 2) float32 coordinates of the pixels `flow[::step, ::step]` holds, row by row."""
    gx, gy = np.meshgrid(np.arange(0, width, step), np.arange(0, height, step))
    points = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    points.setflags(write=False)
    return points


def fit_global_motion(flow: np.ndarray, cfg: FlowConfig, field: np.ndarray | None = None) -> GlobalMotion:
    """The camera motion of an (h, w, 2) flow field by `cfg.global_motion`.

    `field`, an area-averaged copy of the flow at least as fine as the fitting grid, is averaged down
    instead of the full flow when given: the same cell means (exact for whole-number ratios) for less work.
    """
    h, w = flow.shape[:2]
    cols = min(cfg.global_grid, w)
    rows = max(2, min(h, round(cols * h / w)))
    source = flow
    if field is not None and field.shape[0] >= rows and field.shape[1] >= cols:
        source = field
    vectors = cv2.resize(source, (cols, rows), interpolation=cv2.INTER_AREA).reshape(-1, 2)
    pts = grid_points(h, w, cols, rows)
    matrix = None
    if cfg.global_motion == "similarity":
        matrix, _ = cv2.estimateAffinePartial2D(
            pts,
            pts + vectors,
            method=cv2.RANSAC,
            ransacReprojThreshold=cfg.ransac_threshold_px,
            maxIters=500,
            confidence=0.99,
            refineIters=10,
        )
    if matrix is None:  # the median model, or a similarity RANSAC could not fit (a degenerate grid)
        med = np.median(vectors, axis=0)
        matrix = np.array([[1.0, 0.0, med[0]], [0.0, 1.0, med[1]]])
    return _summarise(np.asarray(matrix, dtype=np.float64), pts, vectors, (h, w), cfg)


def _summarise(
    matrix: np.ndarray, pts: np.ndarray, vectors: np.ndarray, size: tuple[int, int], cfg: FlowConfig
) -> GlobalMotion:
    """Centre shift, rotation, scale and inlier share of a fitted 2x3 similarity."""
    h, w = size
    centre = np.array([(w - 1) / 2, (h - 1) / 2, 1.0])
    shift = matrix @ centre - centre[:2]
    err = np.linalg.norm(predicted_flow(matrix, pts) - vectors, axis=1)
    return GlobalMotion(
        matrix=matrix,
        dx=float(shift[0]),
        dy=float(shift[1]),
        rotation_deg=math.degrees(math.atan2(-matrix[1, 0], matrix[0, 0])),
        scale=math.hypot(matrix[0, 0], matrix[1, 0]),
        inlier_frac=float(np.mean(err <= cfg.ransac_threshold_px)),
    )


def predicted_flow(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(n, 2) flow the camera motion alone gives at points (n, 2): where they go minus where they are."""
    return pts @ (matrix[:, :2].T - np.eye(2)) + matrix[:, 2]


def residual_flow(flow: np.ndarray, motion: GlobalMotion, step: int = 1) -> np.ndarray:
    """The flow minus the camera's, at every `step`-th pixel both ways: (ceil(h/step), ceil(w/step), 2)."""
    h, w = flow.shape[:2]
    sample = flow[::step, ::step]
    flat = residual_at(sample.reshape(-1, 2), motion, sample_points(h, w, step))
    return flat.reshape(sample.shape)


def residual_at(vectors: np.ndarray, motion: GlobalMotion, points: np.ndarray) -> np.ndarray:
    """(n, 2) float32 flow vectors at (n, 2) points, minus the camera motion's flow there."""
    return (vectors - predicted_flow(motion.matrix, points)).astype(np.float32)
