"""Classical per-frame image features (OpenCV) and the quality flags derived from them.

Cheap (about a millisecond a frame at the decode size), deterministic, and no model: a colour
histogram, edge density (Canny), sharpness (variance of the Laplacian), brightness and contrast.
They describe a frame for filtering and double as quality checks: a frame darker, brighter,
blurrier or flatter than the configured thresholds is flagged (or dropped, `quality.action`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIST_BINS = 8  # per HSV channel: `color_hist` holds 3 * HIST_BINS values
CANNY_LOW, CANNY_HIGH = 100, 200  # Canny hysteresis thresholds on the 8-bit grey image


@dataclass(frozen=True)
class ImageFeatures:
    """What one frame looks like, in numbers comparable across frames of the decode size."""

    color_hist: np.ndarray  # (3 * HIST_BINS,) float32: H, S, V histograms, each summing to 1
    edge_density: float  # fraction of pixels on a Canny edge, 0..1
    sharpness: float  # variance of the Laplacian of the grey image (8-bit scale); low = blurry
    brightness: float  # mean grey level, 0 (black) .. 1 (white)
    contrast: float  # standard deviation of the grey level, 0..0.5


@dataclass(frozen=True)
class QualityThresholds:
    """Limits that flag a frame; None switches a check off."""

    min_sharpness: float | None = None
    min_brightness: float | None = None
    max_brightness: float | None = None
    min_contrast: float | None = None


def grey(pixels: np.ndarray) -> np.ndarray:
    """The 8-bit grey image of an RGB frame (ITU-R 601 weights, as OpenCV)."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)


def laplacian_variance(grey_image: np.ndarray) -> float:
    """Variance of the Laplacian: a standard no-reference sharpness measure (blur lowers it)."""
    import cv2

    return float(cv2.Laplacian(grey_image, cv2.CV_64F).var())


def color_histogram(pixels: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """H, S and V histograms of an RGB frame, each normalised to sum to 1, concatenated."""
    import cv2

    hsv = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2HSV)
    parts = []
    for channel, upper in ((0, 180), (1, 256), (2, 256)):  # OpenCV's 8-bit hue runs 0..179
        hist = cv2.calcHist([hsv], [channel], None, [bins], [0, upper]).ravel()
        parts.append(hist / max(float(hist.sum()), 1.0))
    return np.concatenate(parts).astype(np.float32)


def image_features(pixels: np.ndarray) -> ImageFeatures:
    """All classical features of one RGB uint8 frame (h, w, 3)."""
    import cv2

    g = grey(pixels)
    edges = cv2.Canny(g, CANNY_LOW, CANNY_HIGH)
    scaled = g.astype(np.float32) / 255.0
    return ImageFeatures(
        color_hist=color_histogram(pixels),
        edge_density=float(np.count_nonzero(edges)) / max(edges.size, 1),
        sharpness=laplacian_variance(g),
        brightness=float(scaled.mean()),
        contrast=float(scaled.std()),
    )


def quality_flags(features: ImageFeatures, limits: QualityThresholds) -> list[str]:
    """The names of the checks a frame fails: `blurry`, `dark`, `bright`, `low_contrast`."""
    flags = []
    if limits.min_sharpness is not None and features.sharpness < limits.min_sharpness:
        flags.append("blurry")
    if limits.min_brightness is not None and features.brightness < limits.min_brightness:
        flags.append("dark")
    if limits.max_brightness is not None and features.brightness > limits.max_brightness:
        flags.append("bright")
    if limits.min_contrast is not None and features.contrast < limits.min_contrast:
        flags.append("low_contrast")
    return flags
