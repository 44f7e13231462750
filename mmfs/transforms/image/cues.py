"""What ImageNet labels miss, read from the pixels: named colours, and drawing / black-and-white / photo.

These cues become words of the label bridge (so "an orange sunset" or "a drawing of a horse" can reach
a picture whose labels say neither) and columns of `frames` (`colours`, `style`). Plain arithmetic on
a 64x64 thumbnail, so it costs well under a millisecond a frame and never needs a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDE = 64  # cues are read on a thumbnail of this size
MIN_SHARE = 0.08  # a colour is named when it covers this share of the pixels
MAX_COLOURS = 3
GREY_SATURATION = 0.12  # below: black, grey or white, whatever the hue
MONO_SHARE = 0.97  # black and white: this share of the pixels (nearly) without colour
FLAT_SHARE = 0.5  # drawing: at least this share of the lit pixels in flat areas...
EXACT_FLAT_SHARE = 0.25  # ...this share of all pixels in areas of one exact colour...
TOP_COLOURS_SHARE = 0.6  # ...and its 8 most used quantised colours cover this share

# hue ranges in degrees (0..360), checked in order; red wraps around 0
_HUES = (
    ("red", 0, 15),
    ("orange", 15, 40),
    ("yellow", 40, 68),
    ("green", 68, 165),
    ("blue", 165, 255),
    ("purple", 255, 290),
    ("pink", 290, 340),
    ("red", 340, 361),
)


@dataclass(frozen=True)
class ImageCues:
    """The cues of one image: named colours (most covered first) and its style."""

    colours: tuple[str, ...]
    style: str  # "photo", "black and white photo" or "drawing"


def image_cues(pixels: np.ndarray) -> ImageCues:
    """Colours and style of an HxWx3 uint8 RGB image (grey HxW accepted)."""
    rgb = _thumbnail(pixels).astype(np.float32) / 255.0
    hue, sat, val = _hsv(rgb)
    names = _colour_names(hue, sat, val)
    values, counts = np.unique(names, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    share = counts[order] / names.size
    colours = tuple(str(values[i]) for i, s in zip(order, share, strict=True) if s >= MIN_SHARE)
    return ImageCues(colours[:MAX_COLOURS], _style(rgb, sat))


def _thumbnail(pixels: np.ndarray) -> np.ndarray:
    """A SIDExSIDE RGB thumbnail (area averaging) of any uint8 image."""
    import cv2

    image = pixels if pixels.ndim == 3 else pixels[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return cv2.resize(np.ascontiguousarray(image[:, :, :3]), (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in degrees, saturation and value in 0..1 of a float RGB image."""
    top, low = rgb.max(axis=2), rgb.min(axis=2)
    chroma = top - low
    safe = np.where(chroma > 0, chroma, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hue = np.where(top == r, ((g - b) / safe) % 6, np.where(top == g, (b - r) / safe + 2, (r - g) / safe + 4))
    sat = np.where(top > 0, chroma / np.where(top > 0, top, 1.0), 0.0)
    return hue * 60.0, sat, top


def _colour_names(hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """One colour name per pixel: black, white, grey, brown, or a hue name."""
    names = np.full(hue.shape, "grey", dtype=object)
    for name, lo, hi in _HUES:
        names[(hue >= lo) & (hue < hi)] = name
    warm = (hue >= 10) & (hue < 45)
    names[warm & (val < 0.6) & (sat >= GREY_SATURATION)] = "brown"
    grey = sat < GREY_SATURATION
    names[grey] = "grey"
    names[grey & (val > 0.85)] = "white"
    names[val < 0.18] = "black"
    return names


def _style(rgb: np.ndarray, sat: np.ndarray) -> str:
    """'black and white photo' when colourless, 'drawing' when flat with few colours, else 'photo'."""
    if np.mean(sat < GREY_SATURATION) >= MONO_SHARE and not _flat(rgb):
        return "black and white photo"
    return "drawing" if _flat(rgb) else "photo"


def _flat(rgb: np.ndarray) -> bool:
    """Flat areas and few colours, as in drawings, cartoons, logos and silhouettes.

    Dark pixels do not count as flat: night skies and silhouettes against a sunset are photos.
    """
    grey = rgb.mean(axis=2)
    grad = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    lit = rgb.max(axis=2)[:-1, :-1] > 0.18
    flat_share = float(np.mean(grad[lit] < 0.01)) if lit.any() else 0.0
    exact_share = float(np.mean(grad < 0.002))
    quantised = (rgb * 7.999).astype(np.int32)
    codes = quantised[..., 0] * 64 + quantised[..., 1] * 8 + quantised[..., 2]
    counts = np.sort(np.bincount(codes.ravel(), minlength=512))[::-1]
    top_share = float(counts[:8].sum() / codes.size)
    return flat_share >= FLAT_SHARE and exact_share >= EXACT_FLAT_SHARE and top_share >= TOP_COLOURS_SHARE
