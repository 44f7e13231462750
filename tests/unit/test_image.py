"""Image decoding: EXIF orientation, resizing, thumbnails, pixel limits and corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmfs.errors import ErrorCode, MediaDecodeError, MediaLimitExceeded
from mmfs.transforms.image.pixels import decode_image, resize_short_side, thumbnail_jpeg
from tests import media_factory as mf


def test_decode_resizes_keeping_aspect(tmp_path: Path) -> None:
    path = mf.write_image(tmp_path / "a.png", width=400, height=200)
    img = decode_image(path, short_side=100, max_pixels=10**8)
    assert img.pixels.shape == (100, 200, 3) and (img.width, img.height) == (400, 200)
    small = decode_image(
        mf.write_image(tmp_path / "s.png", width=40, height=30), short_side=100, max_pixels=10**8
    )
    assert small.pixels.shape == (30, 40, 3)  # never enlarged


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((60, 80, 3), np.uint8)
    pixels[:10, :10] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    path = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    img = decode_image(path, short_side=256, max_pixels=10**8)
    assert img.rotation == 90 and (img.width, img.height) == (60, 80)
    assert img.pixels.shape == (80, 60, 3)
    bright = np.argwhere(img.pixels[..., 0] > 128)
    assert bright[:, 1].min() >= 45  # the corner moved to the right edge


def test_pixel_limit_and_corrupt_images(tmp_path: Path) -> None:
    big = mf.write_image(tmp_path / "big.png", width=300, height=300)
    with pytest.raises(MediaLimitExceeded) as info:
        decode_image(big, short_side=64, max_pixels=10_000)
    assert info.value.code == ErrorCode.LIMIT_PIXELS and "big.png" in str(info.value)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    with pytest.raises(MediaDecodeError) as info2:
        decode_image(broken, short_side=64, max_pixels=10**8)
    assert info2.value.code == ErrorCode.IMAGE_DECODE


def test_thumbnail_is_a_small_jpeg() -> None:
    jpeg = thumbnail_jpeg(mf.textured_frame(320, 240), longest_side=160, quality=80)
    assert jpeg[:3] == b"\xff\xd8\xff"
    from io import BytesIO

    assert Image.open(BytesIO(jpeg)).size == (160, 120)
    assert resize_short_side(np.zeros((10, 20, 3), np.uint8), 5).shape == (5, 10, 3)
