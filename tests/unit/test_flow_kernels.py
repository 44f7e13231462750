"""The compiled loops of the flow statistics against the numpy / OpenCV operations they stand for."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mmfs.config import FlowConfig
from mmfs.transforms.video import flow_kernels as kernels
from mmfs.transforms.video.global_motion import fit_camera, grid_points, offsets_from_centre


def octant_of(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each vector's octant through the kernel, one compiled call per vector."""
    return np.array([kernels._octant(a, b) for a, b in zip(x.tolist(), y.tolist(), strict=True)])


def test_octant_is_the_atan2_rule_on_and_between_the_bin_edges() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 3000)).astype(np.float32)
    # every bin edge (multiples of 45 degrees) at two lengths, where a rounding rule would show
    edge_x = np.array([1, 1, 0, -1, -1, -1, 0, 1, 2, -3], dtype=np.float32)
    edge_y = np.array([0, 1, 1, 1, 0, -1, -1, -1, -2, 0], dtype=np.float32)
    x, y = np.concatenate([x, edge_x, 0.5 * edge_x]), np.concatenate([y, edge_y, 0.5 * edge_y])
    expected = np.floor(np.mod(np.arctan2(y.astype(float), x.astype(float)), 2 * np.pi) / (np.pi / 4)) % 8
    np.testing.assert_array_equal(octant_of(x, y), expected.astype(int))
    assert octant_of(np.zeros(1, np.float32), np.zeros(1, np.float32))[0] == 0  # no motion: bin 0


@pytest.mark.parametrize("n", [1, 2, 3, 8, 9, 144, 145, 920])
@pytest.mark.parametrize("values_kind", ["distinct", "ties", "constant"])
def test_rank_value_is_the_sorted_value(n: int, values_kind: str) -> None:
    rng = np.random.default_rng(n)
    values = {
        "distinct": rng.standard_normal(n),
        "ties": rng.integers(0, max(2, n // 3), n).astype(np.float64),
        "constant": np.full(n, 2.5),
    }[values_kind]
    before = values.copy()
    for k in sorted({0, n // 2, (19 * n) // 20, n - 1}):
        assert kernels.rank_value(values, k, np.empty(n), np.empty(n)) == np.sort(values)[k]
    np.testing.assert_array_equal(values, before)  # the input keeps its order


@pytest.mark.parametrize("n", [1, 2, 3, 144, 145])
@pytest.mark.parametrize("tied", [False, True])
def test_median_matches_numpy(n: int, tied: bool) -> None:
    values = np.random.default_rng(n).standard_normal(n)
    if tied:
        values = np.round(values)
    median = kernels._median(values, np.empty(n), np.empty(n))
    assert median == pytest.approx(float(np.median(values)), abs=1e-15)


@pytest.mark.parametrize(
    ("size", "field"), [((90, 160), (18, 32)), ((180, 320), (18, 32)), ((96, 160), (16, 32))]
)
def test_reduce_flow_is_inter_area_and_a_strided_sample(
    size: tuple[int, int], field: tuple[int, int]
) -> None:
    h, w = size
    flow = np.random.default_rng(0).standard_normal((h, w, 2)).astype(np.float32) * 4
    step = 4
    out = np.empty((*field, 2), np.float32)
    sample_x = np.empty((-(-h // step), -(-w // step)), np.float32)
    sample_y = np.empty_like(sample_x)
    kernels.reduce_flow(flow, step, out, sample_x, sample_y)
    expected = cv2.resize(flow, (field[1], field[0]), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_array_equal(sample_x, flow[::step, ::step, 0])
    np.testing.assert_array_equal(sample_y, flow[::step, ::step, 1])


def similarity_flow(points: np.ndarray, size: tuple[int, int], params: tuple[float, ...]) -> np.ndarray:
    """The flow a similarity (a, b, tx, ty) about the frame centre gives at (m, 2) points."""
    x, y = offsets_from_centre(points, size)
    a, b, tx, ty = params
    return np.stack([a * x - b * y + tx, b * x + a * y + ty], axis=1)


def test_fit_recovers_an_exact_similarity_past_outlier_cells() -> None:
    cfg = FlowConfig()
    size, rows, cols = (90, 160), 9, 16
    truth = (0.02, -0.03, 1.5, -0.75)  # 1.7 degrees clockwise-ish turn, 2 % zoom, a shift
    cells = similarity_flow(grid_points(*size, cols, rows), size, truth).reshape(rows, cols, 2)
    moved = cells.copy()
    moved[2:6, 3:8] += (6.0, 5.0)  # 20 of 144 cells: an object moving on its own
    grids = np.stack([cells, moved]).astype(np.float32)
    params, inlier_frac = fit_camera(grids, size, cfg)
    np.testing.assert_allclose(params, [truth, truth], atol=1e-5)
    assert inlier_frac[0] == 1.0 and inlier_frac[1] == pytest.approx(124 / 144)


def test_median_mode_is_the_median_shift() -> None:
    cfg = FlowConfig(global_motion="median")
    grids = np.random.default_rng(2).standard_normal((3, 9, 16, 2)).astype(np.float32)
    params, inlier_frac = fit_camera(grids, (90, 160), cfg)
    vectors = grids.reshape(3, -1, 2).astype(float)
    np.testing.assert_allclose(params[:, 2:], np.median(vectors, axis=1), atol=1e-12)
    assert (params[:, :2] == 0).all()
    shift_error = np.linalg.norm(vectors - np.median(vectors, axis=1)[:, None], axis=2)
    np.testing.assert_allclose(inlier_frac, (shift_error <= cfg.ransac_threshold_px).mean(axis=1))
