"""Detect what a file is from its bytes (magic numbers, then a container probe), not its extension."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

Kind = Literal["video", "audio", "image", "text", "unknown"]

_IMAGE_MAGIC: tuple[tuple[bytes, int], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0),
    (b"\xff\xd8\xff", 0),
    (b"GIF87a", 0),
    (b"GIF89a", 0),
    (b"BM", 0),
    (b"II*\x00", 0),
    (b"MM\x00*", 0),
)
# Containers that hold audio and/or video: which one it is comes from the probe's streams.
_AV_MAGIC: tuple[tuple[bytes, int], ...] = (
    (b"ftyp", 4),  # MP4 / MOV / M4A / 3GP
    (b"\x1a\x45\xdf\xa3", 0),  # Matroska / WebM
    (b"OggS", 0),
    (b"fLaC", 0),
    (b"ID3", 0),
    (b"FLV", 0),
    (b"\x00\x00\x01\xba", 0),  # MPEG-PS
    (b"\x00\x00\x01\xb3", 0),  # MPEG-1/2 video elementary stream
    (b"#!AMR", 0),
    (b"\x30\x26\xb2\x75", 0),  # ASF / WMV
    (b"YUV4MPEG2 ", 0),  # raw video with a text header: its frames may look like text too
)
_UTF_BOMS: tuple[bytes, ...] = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")  # UTF-16 LE/BE, UTF-32 BE
_BINARY_MAGIC: tuple[bytes, ...] = (
    b"\x1f\x8b",
    b"PK\x03\x04",
    b"%PDF",
    b"\x7fELF",
    b"BZh",
    b"\xfd7zXZ",
)


# ISO-BMFF brands of still images (AVIF, HEIF): an `ftyp` box that is not a movie. `avis` (an AVIF
# sequence) and `msf1` stay with the movies.
_STILL_BRANDS = frozenset({b"avif", b"mif1", b"heic", b"heix"})
# Netpbm (PBM/PGM/PPM): "P1".."P6", then width and height, comments allowed between
_NETPBM = re.compile(rb"\AP[1-6]\s+(?:#[^\n]*\n\s*)*\d+\s+\d+")


def sniff(head: bytes) -> Kind | Literal["av", "binary"]:
    """Classify the first bytes of a file: a definite kind, 'av' (probe needed) or 'binary'."""
    for magic, offset in _IMAGE_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return "image"
    if (head[4:8] == b"ftyp" and head[8:12] in _STILL_BRANDS) or _NETPBM.match(head):
        return "image"
    if head[:4] == b"RIFF":
        sub = head[8:12]
        if sub == b"WEBP":
            return "image"
        if sub in (b"WAVE", b"AVI "):
            return "av"
    for magic, offset in _AV_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return "av"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "av"  # MPEG-TS: a sync byte every 188 bytes
    if head.startswith(_UTF_BOMS):
        return "text"  # before the MPEG sync test: the UTF-16 LE BOM (FF FE) matches it too
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "av"  # MPEG audio frame sync (mp3 without ID3), ADTS AAC
    if any(head.startswith(m) for m in _BINARY_MAGIC) or head[257:262] == b"ustar":
        return "binary"  # ... or a tar archive (POSIX `ustar` magic in the first header)
    if _looks_like_text(head):
        return "text"
    return "unknown"


def _looks_like_text(head: bytes) -> bool:
    """No NUL bytes and mostly printable: a text candidate."""
    if b"\x00" in head:
        return False
    if not head:
        return False
    control = sum(1 for b in head if b < 9 or 13 < b < 32)
    return control / len(head) < 0.01


def read_head(path: Path, n: int = 4096) -> bytes:
    """The first n bytes of a file."""
    with path.open("rb") as fh:
        return fh.read(n)
