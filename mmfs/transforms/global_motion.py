"""Camera (global) motion of flow fields, and the residual (object) motion left once it is removed.

The camera motion is fitted on a coarse grid of area-averaged flow vectors (`flow.global_grid` columns):
a similarity (shift, rotation, uniform scale) by robust least squares, or the median flow (a pure shift).
The similarity fit starts from the median shift and re-fits on the cells it explains (within
max(`ransac_threshold_px`, 2.5 x the median cell error)) a few times, so the cells a moving object covers
drop out: a pan with a person walking through it gives the pan. The model is linear in its four
parameters and the grid is the same for every pair, so a whole batch of pairs is fitted in a few array
operations (a RANSAC per pair cost as much as DIS's fast flow itself at the default size).

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
from mmfs.transforms.quantiles import linear_quantiles

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


def camera_design(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(m, 2, 4) rows of the linear model: flow = [[X, -Y, 1, 0], [Y, X, 0, 1]] @ (a, b, tx, ty).

    X, Y are measured from the frame centre, so (tx, ty) is the centre's shift and 1 + a, b the
    scaled rotation: where a point goes is p + [[a, -b], [b, a]] (p - c) + t.
    """
    h, w = size
    x = points[:, 0].astype(np.float64) - (w - 1) / 2
    y = points[:, 1].astype(np.float64) - (h - 1) / 2
    one, zero = np.ones_like(x), np.zeros_like(x)
    return np.stack([np.stack([x, -y, one, zero], axis=1), np.stack([y, x, zero, one], axis=1)], axis=1)


@functools.lru_cache(maxsize=64)
def grid_design(height: int, width: int, cols: int, rows: int) -> np.ndarray:
    """The model's design at the grid cells' centres as a contiguous (4, 2m) matrix, cached per size."""
    return transposed(camera_design(grid_points(height, width, cols, rows), (height, width)))


def transposed(design: np.ndarray) -> np.ndarray:
    """(m, 2, 4) design rows as the read-only contiguous (4, 2m) matrix `predict` multiplies by."""
    flat = np.ascontiguousarray(design.reshape(-1, 4).T)
    flat.setflags(write=False)
    return flat


def fit_params(grids: np.ndarray, size: tuple[int, int], cfg: FlowConfig) -> np.ndarray:
    """(n, 4) float64 (a, b, tx, ty) of each (n, rows, cols, 2) grid of flow cells.

    In complex numbers (p = X + iY from the frame centre, f = u + iv) the model is f = z p + t with
    z = a + ib, so each re-fit is a weighted complex linear regression in closed form: five weighted sums
    (two matrix products for the whole batch) and a few (n,) operations, instead of n 4x4 solves. A cell
    is explained within max(`ransac_threshold_px`, 2.5 x the median cell error), compared squared and in
    float32 (it only decides which cells count). At least half the cells are always explained, and the
    cells are distinct points, so every re-fit is well posed. The loop ends early once no pair's cells
    change: the same cells give the same fit.
    """
    n = grids.shape[0]
    vectors = grids.reshape(n, -1, 2).astype(np.float64)
    params = np.zeros((n, 4))
    params[:, 2:] = linear_quantiles(np.ascontiguousarray(vectors.transpose(0, 2, 1)), (0.5,))[0]
    if cfg.global_motion == "median":
        return params
    design_t32 = grid_design(size[0], size[1], grids.shape[2], grids.shape[1]).astype(np.float32)
    vectors32 = grids.reshape(n, -1, 2).astype(np.float32, copy=False)
    p, cell_terms = _cell_terms(size[0], size[1], grids.shape[2], grids.shape[1])
    f = vectors @ np.array([1, 1j])  # (n, m)
    pair_terms = np.stack([f, p.conj() * f], axis=2)  # (n, m, 2): f, conj(p) f
    floor, middle = np.float32(cfg.ransac_threshold_px**2), f.shape[1] // 2
    explained = None
    for _ in range(_REFITS):
        err2 = squared_error(vectors32, predict(design_t32, params.astype(np.float32)))
        limit2 = np.sort(err2, axis=1)[:, middle]
        limit2 *= _SPREAD**2
        now = err2 <= np.maximum(limit2, floor)[:, None]
        if explained is not None and np.array_equal(now, explained):
            break
        explained = now
        weights = now.astype(np.float64)
        s_w, s_p, s_r2 = (weights @ cell_terms).T  # sums of w, w p, w |p|^2
        s_f, s_pf = np.matmul(weights[:, None, :], pair_terms)[:, 0].T  # sums of w f, w conj(p) f
        centroid = s_p / s_w
        spread = s_r2.real - (s_p * centroid.conj()).real  # sum of w |p - centroid|^2
        z = (s_pf - centroid.conj() * s_f) / spread
        t = s_f / s_w.real - z * centroid
        params = np.stack([z, t], axis=1).view(np.float64)  # (a, b, tx, ty)
    return params


@functools.lru_cache(maxsize=64)
def _cell_terms(height: int, width: int, cols: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres from the frame centre as complex X + iY, and (m, 3) complex 1, p, |p|^2: cached."""
    points = grid_points(height, width, cols, rows).astype(np.float64)
    p = (points[:, 0] - (width - 1) / 2) + 1j * (points[:, 1] - (height - 1) / 2)
    terms = np.stack([np.ones_like(p), p, p * p.conj()], axis=1)
    for array in (p, terms):
        array.setflags(write=False)
    return p, terms


def predict(design_t: np.ndarray, params: np.ndarray) -> np.ndarray:
    """(n, m, 2) camera flow at m points for each of n parameter rows: one matmul by the (4, 2m) design."""
    return (params @ design_t).reshape(len(params), -1, 2)


def squared_error(vectors: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(n, m) squared length of each vector's difference from the prediction."""
    diff = vectors - predicted
    diff *= diff
    return diff[..., 0] + diff[..., 1]


def motion_columns(
    params: np.ndarray, grids: np.ndarray, size: tuple[int, int], cfg: FlowConfig
) -> dict[str, np.ndarray]:
    """Each pair's camera motion as (n,) arrays: `global_dx, _dy, _rotation_deg, _scale, _inlier_frac`.

    The inlier share is of grid cells the fitted motion explains within `ransac_threshold_px`.
    """
    n = grids.shape[0]
    design_t = grid_design(size[0], size[1], grids.shape[2], grids.shape[1])
    err2 = squared_error(grids.reshape(n, -1, 2), predict(design_t, params))
    a, b = params[:, 0], params[:, 1]
    return {
        "global_dx": params[:, 2],
        "global_dy": params[:, 3],
        "global_rotation_deg": np.degrees(np.arctan2(-b, 1 + a)),
        "global_scale": np.hypot(1 + a, b),
        "global_inlier_frac": np.mean(err2 <= cfg.ransac_threshold_px**2, axis=1),
    }


def motions_from_params(
    params: np.ndarray, grids: np.ndarray, size: tuple[int, int], cfg: FlowConfig
) -> list[GlobalMotion]:
    """Each pair's fitted parameters as a GlobalMotion: its 2x3 matrix and `motion_columns`."""
    columns = {name: values.tolist() for name, values in motion_columns(params, grids, size, cfg).items()}
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
    return motions_from_params(fit_params(grid, (h, w), cfg), grid, (h, w), cfg)[0]


def predicted_flow(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(n, 2) flow the camera motion alone gives at points (n, 2): where they go minus where they are."""
    return pts @ (matrix[:, :2].T - np.eye(2)) + matrix[:, 2]


def residual_flow(flow: np.ndarray, motion: GlobalMotion, step: int = 1) -> np.ndarray:
    """The flow minus the camera's, at every `step`-th pixel both ways: (ceil(h/step), ceil(w/step), 2)."""
    h, w = flow.shape[:2]
    sample = flow[::step, ::step]
    flat = sample.reshape(-1, 2) - predicted_flow(motion.matrix, sample_points(h, w, step))
    return flat.reshape(sample.shape).astype(np.float32)
