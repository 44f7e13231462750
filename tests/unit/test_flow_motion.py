"""Flow methods, accuracy against known motion, camera motion and residual (object) motion.

Frames are generated: a smooth random texture moved by a known shift, turned by a known angle, or panned
with a separately moving patch on top, so every expected value is known exactly.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mmfs.config import FlowConfig
from mmfs.transforms.video.flow import flow_between
from mmfs.transforms.video.flow_stats import field_shape, flow_stats, flow_stats_batch
from mmfs.transforms.video.global_motion import fit_global_motion, residual_flow
from tests import media_factory as mf

W, H = 160, 96  # the default work width: flow runs at full working size
METHODS = ("farneback", "dis_fast", "dis_medium")
EPE_BOUND = {"farneback": 0.3, "dis_fast": 0.3, "dis_medium": 0.3}  # px at work size (docs/motion.md)


def shifted_pair(dx: float, dy: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A texture and the same texture moved by (dx, dy) px, sub-pixel shifts by bilinear warping."""
    big = mf.textured_frame(W + 40, H + 40, seed)
    moved = cv2.warpAffine(
        big, np.float32([[1, 0, dx], [0, 1, dy]]), (W + 40, H + 40), flags=cv2.INTER_LINEAR
    )
    return big[20 : 20 + H, 20 : 20 + W], moved[20 : 20 + H, 20 : 20 + W]


def end_point_error(flow: np.ndarray, dx: float, dy: float) -> float:
    """Mean distance between the flow vectors and the true (dx, dy), over every pixel."""
    return float(np.hypot(flow[..., 0] - dx, flow[..., 1] - dy).mean())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("dx", "dy"), [(3.0, -2.0), (1.5, 0.5)])
def test_known_translation_end_point_error(method: str, dx: float, dy: float) -> None:
    cfg = FlowConfig(method=method)  # type: ignore[arg-type]
    a, b = shifted_pair(dx, dy)
    flow = flow_between(a, b, cfg)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    assert end_point_error(flow, dx, dy) <= EPE_BOUND[method]
    stats = flow_stats(flow, cfg)
    assert stats.global_dx == pytest.approx(dx, abs=0.3) and stats.global_dy == pytest.approx(dy, abs=0.3)
    assert stats.global_rotation_deg == pytest.approx(0.0, abs=0.5)
    assert stats.global_scale == pytest.approx(1.0, abs=0.01)
    assert stats.residual_mean_mag < 0.3  # a pure camera move leaves no object motion
    assert stats.median_mag == pytest.approx(np.hypot(dx, dy), abs=0.3)


def test_stats_match_numpy_on_the_full_field() -> None:
    """Sampled statistics agree with numpy over every pixel when the sample is the whole field."""
    cfg = FlowConfig(stats_max_samples=W * H, field_size=30)
    a, b = shifted_pair(2.0, 1.0)
    flow = flow_between(a, b, cfg)
    mag = np.hypot(flow[..., 0], flow[..., 1])
    stats = flow_stats(flow, cfg)
    assert stats.median_mag == pytest.approx(float(np.median(mag)), rel=1e-5)
    assert stats.p95_mag == pytest.approx(float(np.percentile(mag, 95)), rel=1e-5)
    assert stats.max_mag == pytest.approx(float(mag.max()), rel=1e-5)
    assert stats.mean_mag == pytest.approx(float(mag.mean()), rel=1e-4)
    # the mean vector comes from the area-averaged field (18 x 30 from 96 x 160: a fractional ratio)
    assert stats.mean_dx == pytest.approx(float(flow[..., 0].mean()), abs=1e-4)
    assert stats.mean_dy == pytest.approx(float(flow[..., 1].mean()), abs=1e-4)
    ang = np.arctan2(flow[..., 1], flow[..., 0]) % (2 * np.pi)
    hist, _ = np.histogram(ang, bins=8, range=(0, 2 * np.pi), weights=mag)
    np.testing.assert_allclose(stats.orient_hist, hist / hist.sum(), atol=1e-3)
    assert stats.moving_frac == pytest.approx(float((mag > cfg.moving_threshold_px).mean()))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("angle", [3.0, -3.0])
def test_rotation_sign(method: str, angle: float) -> None:
    """getRotationMatrix2D's positive angle turns the picture counter-clockwise on screen: + here too."""
    big = mf.textured_frame(400, 300, seed=3)
    turned = cv2.warpAffine(big, cv2.getRotationMatrix2D((199.5, 149.5), angle, 1.0), (400, 300))
    box = (slice(102, 198), slice(120, 280))  # a centred 160 x 96 window: no black corners
    cfg = FlowConfig(method=method)  # type: ignore[arg-type]
    stats = flow_stats(flow_between(big[box], turned[box], cfg), cfg)
    assert np.sign(stats.global_rotation_deg) == np.sign(angle)
    assert stats.global_rotation_deg == pytest.approx(angle, abs=0.6)
    assert abs(stats.global_dx) < 0.3 and abs(stats.global_dy) < 0.3  # turned about the centre


def pan_with_object(index: int) -> np.ndarray:
    """Background panned +2 px/frame in x; a 32 px patch moving 4 px/frame down the screen."""
    background = mf.textured_frame(W + 40, H + 40, seed=0)
    patch = mf.textured_frame(32, 32, seed=7)
    x0 = 20 - 2 * index
    frame = background[20 : 20 + H, x0 : x0 + W].copy()
    top = 30 + 4 * index
    frame[top : top + 32, 60:92] = patch
    return frame


@pytest.mark.parametrize("method", ["farneback", "dis_medium"])
def test_camera_pan_and_moving_object(method: str) -> None:
    cfg = FlowConfig(method=method)  # type: ignore[arg-type]
    flow = flow_between(pan_with_object(0), pan_with_object(1), cfg)
    motion = fit_global_motion(flow, cfg)
    assert motion.dx == pytest.approx(2.0, abs=0.25) and motion.dy == pytest.approx(0.0, abs=0.25)
    assert motion.rotation_deg == pytest.approx(0.0, abs=0.3) and motion.scale == pytest.approx(1.0, abs=0.01)
    assert motion.inlier_frac > 0.8
    resid = residual_flow(flow, motion)
    rmag = np.hypot(resid[..., 0], resid[..., 1])
    on_object = np.zeros((H, W), dtype=bool)
    on_object[34:66, 60:92] = True  # where the patch was and went: 7 % of the frame
    assert rmag[on_object].mean() > 2.0  # the patch's own motion, (-2, 4) against the background
    assert rmag[~on_object].mean() < 0.3
    assert rmag[on_object].sum() / rmag.sum() > 0.5
    stats = flow_stats(flow, cfg)
    assert 0.03 < stats.residual_moving_frac < 0.2
    assert stats.global_dx == pytest.approx(motion.dx, abs=0.05)  # fitted on the field: the same cells
    assert stats.mean_dx < 1.9  # the plain mean is pulled off the pan by the object


def test_median_global_motion_is_a_pure_shift() -> None:
    cfg = FlowConfig(global_motion="median")
    stats = flow_stats(flow_between(pan_with_object(0), pan_with_object(1), cfg), cfg)
    assert stats.global_dx == pytest.approx(2.0, abs=0.25) and stats.global_dy == pytest.approx(0.0, abs=0.25)
    assert (stats.global_rotation_deg, stats.global_scale) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("size", "cfg", "shape"),
    [
        ((90, 160), FlowConfig(), (18, 32)),
        ((160, 90), FlowConfig(), (57, 32)),  # portrait
        ((90, 160), FlowConfig(field_size=16, field_rows=16), (16, 16)),
    ],
)
def test_field_shape_follows_aspect(size: tuple[int, int], cfg: FlowConfig, shape: tuple[int, int]) -> None:
    assert field_shape(*size, cfg) == shape
    flow = np.zeros((*size, 2), dtype=np.float32)
    flow[..., 0] = 1.5
    stats = flow_stats(flow, cfg)
    assert stats.field.shape == (*shape, 2) and stats.field.dtype == np.float16
    np.testing.assert_allclose(stats.field[..., 0].astype(np.float32), 1.5)
    assert (stats.work_height, stats.work_width) == size


def test_non_finite_flow_is_refused() -> None:
    from mmfs.errors import NonFiniteFeature

    flow = np.zeros((H, W, 2), dtype=np.float32)
    flow[3, 4, 0] = np.nan
    with pytest.raises(NonFiniteFeature):
        flow_stats(flow, FlowConfig())


@pytest.mark.parametrize("size", [(90, 160), (64, 96)])  # whole-number and fractional field ratios
def test_batched_stats_equal_one_pair_at_a_time(size: tuple[int, int]) -> None:
    """flow_sequence computes statistics in batches; each pair's must be what it gets alone."""
    h, w = size
    cfg = FlowConfig(work_width=w)
    flows = [flow_between(*shifted_pair(dx, dy), cfg)[:h, :w] for dx, dy in ((2, 1), (-1, 0.5), (0, 0))]
    flows = [np.ascontiguousarray(cv2.resize(f, (w, h))) for f in flows]
    batch = flow_stats_batch(flows, cfg)
    for flow, stats in zip(flows, batch, strict=True):
        alone = flow_stats(flow, cfg)
        for name, value in vars(alone).items():
            np.testing.assert_allclose(getattr(stats, name), value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_half_precision_field_is_numpys_float16_bit_for_bit() -> None:
    """The stored field goes through OpenCV's float16 conversion: it must equal numpy's exactly."""
    from mmfs.transforms.video.flow_stats import _half

    rng = np.random.default_rng(1)
    edge = [1e5, -1e5, 65504, 65520, 6e-8, -0.0, 0.0, 3e-5, -2.5e-7]
    values = np.concatenate([rng.normal(size=4000) * 10, rng.normal(size=600) * 1e-5, edge])
    fields = np.resize(values.astype(np.float32), (4, 1152)).reshape(4, 18, 32, 2)
    with np.errstate(over="ignore"):
        expected = fields.astype(np.float16)
    half = _half(fields)
    assert half.dtype == np.float16 and half.shape == fields.shape
    np.testing.assert_array_equal(half.view(np.uint16), expected.view(np.uint16))
