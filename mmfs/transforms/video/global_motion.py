"""Camera (global) motion of flow fields, and the residual (object) motion left once it is removed.

The camera motion is fitted on a coarse grid of area-averaged flow vectors (`flow.global_grid` columns):
a similarity (shift, rotation, uniform scale) by robust least squares, or the median flow (a pure shift).
The similarity fit starts from the median shift and re-fits on the cells it explains (within
max(`ransac_threshold_px`, 2.5 x the median cell error)) a few times, so the cells a moving object covers
drop out: a pan with a person walking through it gives the pan. The model is linear in its four
parameters, so each re-fit is a closed form over the grid's cells, run as a compiled loop per pair
(`video.flow_kernels`; a RANSAC per pair cost as much as DIS's fast flow itself at the default size).

Conventions, all in pixels of the work-size frame (x right, y down, pixel centres at integer coordinates):
`dx, dy` is the displacement of the frame's centre; `rotation_deg` is positive for a counter-clockwise
turn as seen on screen (OpenCV's `getRotationMatrix2D` convention), negative for clockwise; `scale` > 1
is a zoom in. The fit is deterministic.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from mmfs.config import FlowConfig
from mmfs.transforms.video.flow_kernels import fit_similarity

_REFITS = 4  # re-fits on the explained cells; the fit settles in two or three
_SPREAD = 2.5  # cells within this many median cell errors count as explained while refitting


@dataclass(frozen=True)
class GlobalMotion:
    """A fitted camera motion: the 2x3 map from the first frame's points to the second's, summarised."""

    matrix: np.ndarray  # (2, 3) float64
    dx: float
    dy: float
    rotation_deg: float
    scale: float
    inlier_frac: float  # grid cells the model explains within ransac_threshold_px


def grid_shape(height: int, width: int, cfg: FlowConfig) -> tuple[int, int]:
    """(rows, cols) of the fitting grid: `global_grid` columns, rows from the aspect (at least 2)."""
    cols = min(cfg.global_grid, width)
    return max(2, min(height, round(cols * height / width))), cols


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


@functools.lru_cache(maxsize=64)
def cell_offsets(height: int, width: int, cols: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """X and Y (float64, read-only) of each grid cell's centre from the frame centre, cached per size."""
    return offsets_from_centre(grid_points(height, width, cols, rows), (height, width))


def offsets_from_centre(points: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Read-only float64 X, Y of (m, 2) points measured from the frame centre (what the model turns about)."""
    h, w = size
    x = np.ascontiguousarray(points[:, 0], dtype=np.float64) - (w - 1) / 2
    y = np.ascontiguousarray(points[:, 1], dtype=np.float64) - (h - 1) / 2
    for part in (x, y):
        part.setflags(write=False)
    return x, y


def fit_camera(grids: np.ndarray, size: tuple[int, int], cfg: FlowConfig) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) float64 (a, b, tx, ty) and (n,) inlier share of each (n, rows, cols, 2) grid of flow cells.

    The model is linear in its parameters: with X, Y from the frame centre, the flow at a point is
    u = a X - b Y + tx, v = b X + a Y + ty (a point p goes to p + [[a, -b], [b, a]] (p - c) + t). In
    complex numbers (p = X + iY, f = u + iv) that is f = z p + t with z = a + ib, so each re-fit is a
    weighted complex linear regression in closed form. A cell is explained within
    max(`ransac_threshold_px`, 2.5 x the median cell error); at least half the cells always are, and the
    cells are distinct points, so every re-fit is well posed. The inlier share is of cells the final fit
    explains within `ransac_threshold_px`. `global_motion: median` keeps the median shift alone.
    The loops run compiled, one pair at a time (`video.flow_kernels.fit_similarity`).
    """
    n, rows, cols = grids.shape[:3]
    x, y = cell_offsets(size[0], size[1], cols, rows)
    vectors = np.ascontiguousarray(grids.reshape(n, rows * cols, 2), dtype=np.float32)
    params, inlier_frac = np.empty((n, 4)), np.empty(n)
    refits = _REFITS if cfg.global_motion == "similarity" else 0
    threshold2 = cfg.ransac_threshold_px**2
    fit_similarity(vectors, x, y, refits, _SPREAD**2, threshold2, threshold2, params, inlier_frac)
    return params, inlier_frac


def motion_columns(params: np.ndarray, inlier_frac: np.ndarray) -> dict[str, np.ndarray]:
    """Each pair's camera motion as (n,) arrays: `global_dx, _dy, _rotation_deg, _scale, _inlier_frac`."""
    a, b = params[:, 0], params[:, 1]
    return {
        "global_dx": params[:, 2],
        "global_dy": params[:, 3],
        "global_rotation_deg": np.degrees(np.arctan2(-b, 1 + a)),
        "global_scale": np.hypot(1 + a, b),
        "global_inlier_frac": inlier_frac,
    }


def motions_from_params(
    params: np.ndarray, inlier_frac: np.ndarray, size: tuple[int, int]
) -> list[GlobalMotion]:
    """Each pair's fitted parameters as a GlobalMotion: its 2x3 matrix and `motion_columns`."""
    columns = {name: values.tolist() for name, values in motion_columns(params, inlier_frac).items()}
    centre = np.array([(size[1] - 1) / 2, (size[0] - 1) / 2])
    out = []
    for i, (a, b, tx, ty) in enumerate(params.tolist()):
        linear = np.array([[1 + a, -b], [b, 1 + a]])
        shift = np.array([tx, ty]) - np.array([[a, -b], [b, a]]) @ centre
        out.append(
            GlobalMotion(
                matrix=np.hstack([linear, shift[:, None]]),
                dx=columns["global_dx"][i],
                dy=columns["global_dy"][i],
                rotation_deg=columns["global_rotation_deg"][i],
                scale=columns["global_scale"][i],
                inlier_frac=columns["global_inlier_frac"][i],
            )
        )
    return out


def fit_global_motion(flow: np.ndarray, cfg: FlowConfig) -> GlobalMotion:
    """The camera motion of one (h, w, 2) flow field by `cfg.global_motion`."""
    h, w = flow.shape[:2]
    rows, cols = grid_shape(h, w, cfg)
    grid = cv2.resize(flow, (cols, rows), interpolation=cv2.INTER_AREA)[None]
    return motions_from_params(*fit_camera(grid, (h, w), cfg), (h, w))[0]


def predicted_flow(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(n, 2) flow the camera motion alone gives at points (n, 2): where they go minus where they are."""
    return pts @ (matrix[:, :2].T - np.eye(2)) + matrix[:, 2]


def residual_flow(flow: np.ndarray, motion: GlobalMotion, step: int = 1) -> np.ndarray:
    """The flow minus the camera's, at every `step`-th pixel both ways: (ceil(h/step), ceil(w/step), 2)."""
    h, w = flow.shape[:2]
    sample = flow[::step, ::step]
    flat = sample.reshape(-1, 2) - predicted_flow(motion.matrix, sample_points(h, w, step))
    return flat.reshape(sample.shape).astype(np.float32)
