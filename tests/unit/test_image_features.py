"""Classical image features and quality flags on real photos (skimage) and known synthetic frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mmfs.config import QualityConfig
from mmfs.stages.analysis import keep_frames
from mmfs.transforms.image.face_blur import blur_boxes, pixel_box
from mmfs.transforms.image.features import (
    QualityThresholds,
    color_histogram,
    grey,
    image_features,
    laplacian_variance,
    quality_flags,
)
from mmfs.transforms.image.pixels import resize_short_side
from mmfs.transforms.video.frames import SampledFrames

data = pytest.importorskip("skimage.data", reason="scikit-image provides the real test photos")

DEFAULTS = QualityConfig()
LIMITS = QualityThresholds(
    DEFAULTS.min_sharpness, DEFAULTS.min_brightness, DEFAULTS.max_brightness, DEFAULTS.min_contrast
)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return resize_short_side(data.coffee(), 256)


def test_blurred_copy_is_less_sharp_and_flagged(photo: np.ndarray) -> None:
    blurred = cv2.GaussianBlur(photo, (0, 0), 3)
    sharp_f, blur_f = image_features(photo), image_features(blurred)
    assert blur_f.sharpness < sharp_f.sharpness / 20
    # the reference: OpenCV's Laplacian variance computed directly
    ref = cv2.Laplacian(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
    assert sharp_f.sharpness == pytest.approx(ref)
    assert quality_flags(sharp_f, LIMITS) == []
    assert quality_flags(blur_f, LIMITS) == ["blurry"]


def test_black_frame_is_dark_and_white_is_bright() -> None:
    black = np.zeros((64, 96, 3), np.uint8)
    white = np.full((64, 96, 3), 250, np.uint8)
    f_black, f_white = image_features(black), image_features(white)
    assert f_black.brightness == 0 and f_black.contrast == 0
    assert {"dark", "low_contrast", "blurry"} == set(quality_flags(f_black, LIMITS))
    assert "bright" in quality_flags(f_white, LIMITS) and "dark" not in quality_flags(f_white, LIMITS)
    assert quality_flags(f_black, QualityThresholds()) == []  # every check switched off


def test_checkerboard_has_more_edges_than_a_flat_image() -> None:
    yy, xx = np.mgrid[0:128, 0:128]
    board = (((yy // 16) + (xx // 16)) % 2 * 255).astype(np.uint8)
    checker = np.stack([board] * 3, axis=-1)
    flat = np.full_like(checker, 128)
    assert image_features(checker).edge_density > 0.05
    assert image_features(flat).edge_density == 0.0


def test_brightness_contrast_and_histogram_match_numpy(photo: np.ndarray) -> None:
    f = image_features(photo)
    g = grey(photo).astype(np.float64) / 255
    assert f.brightness == pytest.approx(g.mean(), rel=1e-5)
    assert f.contrast == pytest.approx(g.std(), rel=1e-4)
    hist = color_histogram(photo)
    assert hist.shape == (24,) and np.allclose(hist.reshape(3, 8).sum(axis=1), 1.0)
    hsv = cv2.cvtColor(photo, cv2.COLOR_RGB2HSV)
    value_ref = np.histogram(hsv[..., 2], bins=8, range=(0, 256))[0] / hsv[..., 2].size
    assert np.allclose(hist[16:], value_ref, atol=1e-6)


def test_blur_boxes_smooths_inside_only(photo: np.ndarray) -> None:
    box = (0.25, 0.25, 0.5, 0.5)
    out = blur_boxes(photo, [box])
    x0, y0, x1, y1 = pixel_box(box, photo.shape[1], photo.shape[0])
    inside = (slice(y0 + 4, y1 - 4), slice(x0 + 4, x1 - 4))
    assert laplacian_variance(grey(out)[inside]) < laplacian_variance(grey(photo)[inside]) / 10
    mask = np.ones(photo.shape[:2], bool)
    mask[y0:y1, x0:x1] = False
    assert np.array_equal(out[mask], photo[mask])
    assert blur_boxes(photo, []) is photo


def test_keep_frames_masks_every_per_frame_array() -> None:
    frames = SampledFrames(
        indices=np.arange(4, dtype=np.int64),
        times_s=np.arange(4, dtype=np.float64) / 2,
        frames=np.arange(4, dtype=np.uint8)[:, None, None, None] * np.ones((4, 2, 2, 3), np.uint8),
        backend="test",
    )
    kept = keep_frames(frames, np.array([True, False, True, False]))
    assert kept.indices.tolist() == [0, 2] and kept.times_s.tolist() == [0.0, 1.0]
    assert kept.frames[:, 0, 0, 0].tolist() == [0, 2] and kept.backend == "test"


def test_a_missing_analysis_package_is_a_config_error_with_the_fix() -> None:
    from mmfs.encoders.analysis_common import require
    from mmfs.errors import ConfigError

    with pytest.raises(ConfigError, match=r"image\.ocr needs the 'no_such_ocr_pkg' package.*pip install x"):
        require("no_such_ocr_pkg", "image.ocr", "pip install x")
