"""Timed and untimed text from sidecar files (.srt, .vtt, .txt), decoded strictly.

Text is UTF-8 (a BOM is stripped; UTF-16 with a BOM is accepted) or it is refused with a reason:
dropping undecodable bytes silently would corrupt what trainers read. Cue styling is stripped,
overlapping cues are kept, cues that end before they start are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mmfs.errors import TextEncodingError, UnsupportedMedia

SIDECAR_SUFFIXES: tuple[str, ...] = (".srt", ".vtt", ".txt")
_BINARY_MAGIC = (b"\x1f\x8b", b"PK\x03\x04", b"%PDF", b"\x7fELF")
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_CUE_TIMES = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAGS = re.compile(r"<[^>]*>|\{\\[^}]*\}")


@dataclass(frozen=True)
class TextSegment:
    """A piece of text with its time span (None when untimed) and where it came from."""

    text: str
    start_s: float | None
    end_s: float | None
    source: str


def decode_text_bytes(data: bytes, *, name: str = "") -> str:
    """Strict decode: UTF-8 (BOM stripped) or BOM-marked UTF-16; anything else is refused."""
    label = name or "text"
    if any(data.startswith(m) for m in _BINARY_MAGIC):
        raise UnsupportedMedia(f"{label}: binary data (compressed or archive), not text")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise TextEncodingError(f"{label}: invalid UTF-16 at byte {err.start}") from err
    if b"\x00" in data:
        raise UnsupportedMedia(f"{label}: contains NUL bytes, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise TextEncodingError(f"{label}: not valid UTF-8 at byte {err.start}") from err


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def _clean(lines: list[str]) -> str:
    return " ".join(_TAGS.sub("", line).strip() for line in lines if line.strip()).strip()


def _blocks(text: str) -> list[list[str]]:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    return [block.split("\n") for block in re.split(r"\n\s*\n", normalised) if block.strip()]


def _parse_cues(text: str) -> list[TextSegment]:
    """Cues of SRT and VTT alike: a timing line, then text lines until a blank line."""
    out = []
    for block in _blocks(text):
        for i, line in enumerate(block):
            match = _CUE_TIMES.match(line)
            if not match:
                continue
            g = match.groups()
            start, end = _seconds(*g[:4]), _seconds(*g[4:])
            body = _clean(block[i + 1 :])
            if body and end >= start:
                out.append(TextSegment(body, start, end, "caption"))
            break
    return out


def parse_srt(text: str) -> list[TextSegment]:
    """SubRip cues with their times (HH:MM:SS,mmm)."""
    return _parse_cues(text)


def parse_vtt(text: str) -> list[TextSegment]:
    """WebVTT cues; the header, NOTE, STYLE and REGION blocks are skipped, cue settings ignored."""
    kept = [
        "\n".join(block)
        for block in _blocks(text)
        if not block[0].startswith(("WEBVTT", "NOTE", "STYLE", "REGION"))
    ]
    return _parse_cues("\n\n".join(kept))


def read_sidecar(path: str | Path) -> list[TextSegment]:
    """A sidecar's segments by suffix: .srt and .vtt timed, .txt one untimed segment per paragraph."""
    path = Path(path)
    text = decode_text_bytes(path.read_bytes(), name=path.name)
    suffix = path.suffix.lower()
    if suffix == ".srt":
        return parse_srt(text)
    if suffix == ".vtt":
        return parse_vtt(text)
    paragraphs = [" ".join(block).strip() for block in _blocks(text)]
    return [TextSegment(p, None, None, "caption") for p in paragraphs if p]
