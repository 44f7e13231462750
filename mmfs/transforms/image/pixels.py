"""Image decoding, resizing and JPEG thumbnails (Pillow), shared by images and video frames.

Pillow's decompression-bomb guard stays on: an image over the pixel limit is refused before its
pixels are decoded, with the file name in the message.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mmfs.errors import ErrorCode, MediaDecodeError, MediaLimitExceeded


@dataclass
class DecodedImage:
    """An upright RGB image, resized so its short side is at most the requested size."""

    pixels: np.ndarray  # (h, w, 3) uint8
    width: int  # full-size width as displayed (after EXIF orientation)
    height: int
    rotation: int  # degrees applied from EXIF orientation


_EXIF_ROTATION = {3: 180, 6: 90, 8: 270}


def decode_image(path: str | Path, *, short_side: int, max_pixels: int) -> DecodedImage:
    """Decode an image file upright (EXIF orientation applied) and shrink it to `short_side`."""
    name = Path(path).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > max_pixels:
                    raise MediaLimitExceeded(
                        f"{name}: {img.width}x{img.height} is over the limit of {max_pixels} pixels",
                        code=ErrorCode.LIMIT_PIXELS,
                    )
                orientation = img.getexif().get(0x0112, 1)
                img.draft("RGB", (short_side * 2, short_side * 2))  # JPEG: decode at reduced scale
                upright = ImageOps.exif_transpose(img).convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise MediaLimitExceeded(f"{name}: {err}", code=ErrorCode.LIMIT_PIXELS) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise MediaDecodeError(f"{name}: not a decodable image ({err})", code=ErrorCode.IMAGE_DECODE) from err
    rotation = _EXIF_ROTATION.get(int(orientation), 0)
    full_w, full_h = _full_size(path, rotation)
    return DecodedImage(resize_short_side(np.asarray(upright), short_side), full_w, full_h, rotation)


def image_size(path: str | Path, *, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the header alone, refused over `max_pixels` before any pixel is decoded."""
    name = Path(path).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise MediaLimitExceeded(f"{name}: {err}", code=ErrorCode.LIMIT_PIXELS) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise MediaDecodeError(f"{name}: not a decodable image ({err})", code=ErrorCode.IMAGE_DECODE) from err
    if width * height > max_pixels:
        raise MediaLimitExceeded(
            f"{name}: {width}x{height} is over the limit of {max_pixels} pixels", code=ErrorCode.LIMIT_PIXELS
        )
    return width, height


def _full_size(path: str | Path, rotation: int) -> tuple[int, int]:
    with Image.open(path) as img:
        w, h = img.size
    return (h, w) if rotation in (90, 270) else (w, h)


def resize_short_side(pixels: np.ndarray, short_side: int) -> np.ndarray:
    """Shrink so the short side is `short_side` (never enlarge), keeping the aspect ratio.

    Always a writable copy: arrays over Pillow's buffers are read-only, and torch warns on those
    (a 1x1 image reached the image encoder that way).
    """
    h, w = pixels.shape[:2]
    scale = short_side / min(h, w)
    if scale >= 1.0:
        return np.array(pixels, order="C")
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.array(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))


def thumbnail_jpeg(pixels: np.ndarray, *, longest_side: int, quality: int) -> bytes:
    """A JPEG of the image with its longest side at most `longest_side` pixels."""
    img = Image.fromarray(pixels)
    img.thumbnail((longest_side, longest_side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
