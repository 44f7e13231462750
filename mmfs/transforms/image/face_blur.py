"""Blur rectangular regions (detected faces) of a frame, for privacy in stored thumbnails.

Boxes are fractions of the frame (x0, y0, x1, y1 in 0..1), so the same boxes apply to a frame at
any size. Each region is padded a little (a detector's box is tight around the face) and blurred
with a Gaussian whose width follows the box, so a large face is as unreadable as a small one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAD = 0.15  # each side of a box grows by this fraction of the box size
BLUR_FRACTION = 0.25  # Gaussian sigma as a fraction of the padded box's longer side


def pixel_box(box: Sequence[float], width: int, height: int, pad: float = PAD) -> tuple[int, int, int, int]:
    """A fractional box as padded pixel bounds (x0, y0, x1, y1), clipped to the frame."""
    x0, y0, x1, y1 = (float(v) for v in box)
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    return (
        max(0, int(np.floor((x0 - dx) * width))),
        max(0, int(np.floor((y0 - dy) * height))),
        min(width, int(np.ceil((x1 + dx) * width))),
        min(height, int(np.ceil((y1 + dy) * height))),
    )


def blur_boxes(pixels: np.ndarray, boxes: Sequence[Sequence[float]], pad: float = PAD) -> np.ndarray:
    """A copy of the RGB frame with every box blurred; the frame itself is not modified."""
    import cv2

    if not len(boxes):
        return pixels
    out = np.array(pixels, copy=True)
    height, width = out.shape[:2]
    for box in boxes:
        x0, y0, x1, y1 = pixel_box(box, width, height, pad)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        sigma = max(2.0, BLUR_FRACTION * max(x1 - x0, y1 - y0))
        region = np.ascontiguousarray(out[y0:y1, x0:x1])
        out[y0:y1, x0:x1] = cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)
    return out
