"""Timed and untimed text from sidecar files (.srt, .vtt, .txt), decoded strictly.

Text is UTF-8 (a BOM is stripped; UTF-16 or UTF-32 with a BOM is accepted) or it is refused with a
reason: dropping undecodable bytes silently would corrupt what trainers read. Binary data mis-named
as text is refused before decoding. Cue styling is stripped, overlapping cues are kept, and cues
whose timing line is malformed or that end before they start are skipped.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from mmfs.errors import TextEncodingError, UnsupportedMedia

SIDECAR_SUFFIXES: tuple[str, ...] = (".srt", ".vtt", ".txt")

# Magic numbers of formats that are sometimes mis-named .txt (RELIABILITY item 21).
_BINARY_MAGIC: tuple[tuple[re.Pattern[bytes], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), kind)
    for pattern, kind in (
        (rb"\A\x1f\x8b", "gzip"),
        (rb"\APK\x03\x04", "zip"),
        (rb"\A\x28\xb5\x2f\xfd", "zstd"),
        (rb"\A\xfd7zXZ\x00", "xz"),
        (rb"\ABZh[1-9]1AY&SY", "bzip2"),
        (rb"\A%PDF-", "PDF"),
        (rb"\A\x7fELF", "ELF"),
        (rb"\A\x89PNG\r\n\x1a\n", "PNG"),
        (rb"\A\xff\xd8\xff", "JPEG"),
    )
)
# Longest first: the UTF-32 LE BOM begins with the UTF-16 LE BOM.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_CODEC_NAMES = {"utf-32": "UTF-32", "utf-16": "UTF-16", "utf-8-sig": "UTF-8"}
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_CUE_TIMES = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s|$)")
_TAGS = re.compile(r"<[^>]*>|\{\\[^}]*\}")
_VTT_SKIPPED_BLOCKS = re.compile(r"^(?:WEBVTT|NOTE|STYLE|REGION)(?:[ \t]|$)")


@dataclass(frozen=True)
class TextSegment:
    """A piece of text with its time span (None when untimed) and where it came from."""

    text: str
    start_s: float | None
    end_s: float | None
    source: str  # "document" | "caption" | "asr" | "ocr" | "manifest" | "labels"


def _binary_kind(data: bytes) -> str | None:
    """The name of the binary format `data` starts like, or None when it may be text."""
    return next((kind for pattern, kind in _BINARY_MAGIC if pattern.match(data)), None)


def decode_text_bytes(data: bytes, *, name: str = "") -> str:
    """Strict decode: UTF-8 (BOM stripped) or BOM-marked UTF-16/32; binary or other encodings refused."""
    label = name or "text"
    kind = _binary_kind(data)
    if kind is not None:
        raise UnsupportedMedia(f"{label}: {kind} data, not text")
    codec = next((codec for bom, codec in _BOMS if data.startswith(bom)), "utf-8-sig")
    if codec == "utf-8-sig" and b"\x00" in data:
        raise UnsupportedMedia(f"{label}: contains NUL bytes (binary, or UTF-16 without a BOM), not text")
    try:
        text = data.decode(codec)  # each codec consumes its BOM
    except UnicodeDecodeError as err:
        raise TextEncodingError(f"{label}: not valid {_CODEC_NAMES[codec]} at byte {err.start}") from None
    if "\x00" in text:
        raise UnsupportedMedia(f"{label}: contains NUL characters, not text")
    return text


def _seconds(h: str | None, m: str, s: str, frac: str) -> float | None:
    """Seconds of one timestamp, or None when minutes or seconds are out of range."""
    if int(s) >= 60 or (h is not None and int(m) >= 60):
        return None
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def _clean(lines: list[str], *, unescape: bool) -> str:
    """One line of plain text: tags stripped, entities decoded (VTT), whitespace collapsed, NFC."""
    text = " ".join(_TAGS.sub("", line) for line in lines)
    if unescape:
        text = html.unescape(text)
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _blocks(text: str) -> list[list[str]]:
    """Blank-line separated blocks of lines, whatever the line endings."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    return [block.strip("\n").split("\n") for block in re.split(r"\n[ \t]*\n", normalised) if block.strip()]


def _cue(block: list[str], *, unescape: bool) -> TextSegment | None:
    """The cue in one block: its first timing line, then the text lines after it."""
    for i, line in enumerate(block):
        match = _CUE_TIMES.match(line)
        if match is None:
            continue
        g = match.groups()
        start, end = _seconds(*g[:4]), _seconds(*g[4:])
        body = _clean(block[i + 1 :], unescape=unescape)
        if start is None or end is None or end < start or not body:
            return None
        return TextSegment(body, start, end, "caption")
    return None


def _parse_cues(blocks: list[list[str]], *, unescape: bool) -> list[TextSegment]:
    """Every well-formed cue, in file order (overlaps kept; the aligner handles them)."""
    cues = (_cue(block, unescape=unescape) for block in blocks)
    return [cue for cue in cues if cue is not None]


def parse_srt(text: str) -> list[TextSegment]:
    """SubRip cues with their times (HH:MM:SS,mmm; a dot separator is accepted too)."""
    return _parse_cues(_blocks(text), unescape=False)


def parse_vtt(text: str) -> list[TextSegment]:
    """WebVTT cues; the header, NOTE, STYLE and REGION blocks are skipped, cue settings ignored."""
    blocks = [b for b in _blocks(text) if not _VTT_SKIPPED_BLOCKS.match(b[0]) or _has_timing(b)]
    return _parse_cues(blocks, unescape=True)


def _has_timing(block: list[str]) -> bool:
    """Whether a block holds a timing line (a header glued to the first cue still yields that cue)."""
    return any(_CUE_TIMES.match(line) for line in block)


def read_sidecar(path: str | Path) -> list[TextSegment]:
    """A sidecar's segments by suffix: .srt and .vtt timed, .txt one untimed segment per paragraph."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SIDECAR_SUFFIXES:
        raise UnsupportedMedia(f"{path.name}: not a sidecar suffix (expected one of {SIDECAR_SUFFIXES})")
    text = decode_text_bytes(path.read_bytes(), name=path.name)
    if suffix == ".srt":
        return parse_srt(text)
    if suffix == ".vtt":
        return parse_vtt(text)
    paragraphs = (_clean(block, unescape=False) for block in _blocks(text))
    return [TextSegment(p, None, None, "caption") for p in paragraphs if p]
