"""Frame geometry: the size a decoder scales to, the centre crop after it, and rotation upright.

Sizes are planned in display orientation (after rotation) and handed to the decoder in coded
orientation, so a portrait phone clip and a landscape one resized alike come out alike. Scaled
sizes are even (YUV 4:2:0 scalers want it); odd source sizes are fine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

ResizeMode = Literal["short_side", "fit", "center_crop"]


@dataclass(frozen=True)
class Geometry:
    """What the decoder scales to (coded orientation), and the crop taken after rotation, if any."""

    decode_size: tuple[int, int]  # (w, h) as coded
    crop: tuple[int, int] | None  # (w, h) as displayed, centred

    def finish(self, frames: np.ndarray, rotation: int) -> np.ndarray:
        """Rotate a decoded (n, h, w, 3) stack upright, then take the centre crop."""
        frames = rotate(frames, rotation)
        if self.crop is None:
            return frames
        cw, ch = self.crop
        h, w = frames.shape[1:3]
        y, x = (h - ch) // 2, (w - cw) // 2
        return np.ascontiguousarray(frames[:, y : y + ch, x : x + cw])


def plan_geometry(
    width: int,
    height: int,
    *,
    rotation: int = 0,
    mode: ResizeMode = "short_side",
    short_side: int = 256,
    box: tuple[int, int] = (224, 224),
) -> Geometry:
    """The decode size and crop for a coded width x height shown rotated by `rotation` degrees."""
    turned = rotation % 180 == 90
    dw, dh = (height, width) if turned else (width, height)
    crop = None
    if mode == "short_side":
        out = coded_size(dw, dh, short_side)
    elif mode == "fit":
        scale = min(1.0, box[0] / dw, box[1] / dh)
        out = (_even(dw * scale), _even(dh * scale))
    else:  # cover the box (upscaling if the source is smaller), then crop its centre
        scale = max(box[0] / dw, box[1] / dh)
        out = (max(_even_up(box[0]), _even(dw * scale)), max(_even_up(box[1]), _even(dh * scale)))
        crop = box
    return Geometry((out[1], out[0]) if turned else out, crop)


def coded_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Even (w, h) with the short side at most `short_side`, aspect kept, never upscaled."""
    scale = min(1.0, short_side / min(width, height))
    return _even(width * scale), _even(height * scale)


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


def _even_up(x: int) -> int:
    return max(2, math.ceil(x / 2) * 2)


def rotate(frames: np.ndarray, clockwise: int) -> np.ndarray:
    """Rotate a (n, h, w, c) stack clockwise by 0/90/180/270 degrees."""
    k = (clockwise // 90) % 4
    # np.rot90 turns counter-clockwise for positive k, so clockwise is negative k.
    return np.ascontiguousarray(np.rot90(frames, k=-k, axes=(1, 2))) if k else frames
