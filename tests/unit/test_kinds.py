"""Kind detection from bytes, not extensions."""

from __future__ import annotations

from pathlib import Path

from mmfs.media.kinds import read_head, sniff
from tests import media_factory as mf


def test_sniff_by_content_not_extension(tmp_path: Path) -> None:
    png = mf.write_image(tmp_path / "photo.png")
    misnamed = tmp_path / "photo.txt"
    misnamed.write_bytes(png.read_bytes())
    assert sniff(read_head(misnamed)) == "image"
    jpg = mf.write_image(tmp_path / "a.jpg")
    assert sniff(read_head(jpg)) == "image"
    wav = mf.write_wav(tmp_path / "a.wav")
    assert sniff(read_head(wav)) == "av"
    video = mf.write_video(tmp_path / "clip.mp4", times_s=mf.constant_rate_times(3, 10))
    misnamed_video = tmp_path / "clip.jpg"
    misnamed_video.write_bytes(video.read_bytes())
    assert sniff(read_head(misnamed_video)) == "av"


def test_sniff_text_and_binary(tmp_path: Path) -> None:
    assert sniff(b"Hello, world.\nSecond line.") == "text"
    assert sniff("Grüße aus Köln".encode()) == "text"
    assert sniff(b"\x1f\x8b\x08\x00rest") == "binary"
    assert sniff(b"\x00\x01\x02\x03" * 10) == "unknown"
    assert sniff(b"") == "unknown"


def test_sniff_netpbm_and_still_image_brands_as_images(tmp_path: Path) -> None:
    """A PPM's header is printable (it looked like text), and an AVIF still is an `ftyp` box like a movie;
    an AVIF sequence stays with the movies, and text that starts like a PPM magic is still text."""
    from PIL import Image

    ppm = tmp_path / "a.ppm"
    Image.new("RGB", (4, 3), (200, 10, 10)).save(ppm)
    assert sniff(read_head(ppm)) == "image"
    assert sniff(b"P3\n# made by hand\n4 3\n255\n" + b"0 0 0 " * 12) == "image"
    assert sniff(b"P6 means plan six, a text file.") == "text"
    still = b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00avifmif1"
    assert sniff(still) == "image" and sniff(still.replace(b"ftypavif", b"ftypheic")) == "image"
    assert sniff(b"\x00\x00\x00\x28ftypavis\x00\x00\x00\x00avifavis") == "av"
