"""Timed and untimed text from sidecar files (.srt, .vtt, .txt), decoded strictly.

Decoding is `text.clean.decode_text` (BOM, strict UTF-8, then a detected charset, recorded on each
segment); undecodable bytes are refused with a reason, never dropped. Cue styling is stripped,
overlapping cues are kept, and a malformed cue (a bad timing line, times out of range, an end
before its start, a block with no timing) is a CaptionFormatError naming the cue, never skipped.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from mmfs.errors import CaptionFormatError, UnsupportedMedia
from mmfs.transforms.text.clean import binary_kind, decode_text

SIDECAR_SUFFIXES: tuple[str, ...] = (".srt", ".vtt", ".txt")

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
    charset: str | None = None  # what the source bytes were decoded with; None when not from bytes


_binary_kind = binary_kind  # kept for callers of earlier releases


def decode_text_bytes(data: bytes, *, name: str = "") -> str:
    """Strict decode (BOM, UTF-8, then a detected charset): `text.clean.decode_text`'s text only."""
    return decode_text(data, name=name).text


def _seconds(h: str | None, m: str, s: str, frac: str) -> float | None:
    """Seconds of one timestamp, or None when minutes or seconds are out of range."""
    if int(s) >= 60 or (h is not None and int(m) >= 60):
        return None
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def _clean(lines: list[str], *, unescape: bool) -> str:
    """One line of plain text: tags stripped, entities decoded (VTT), whitespace collapsed, NFKC."""
    text = " ".join(_TAGS.sub("", line) for line in lines)
    if unescape:
        text = html.unescape(text)
    return unicodedata.normalize("NFKC", " ".join(text.split()))


def _blocks(text: str) -> list[list[str]]:
    """Blank-line separated blocks of lines, whatever the line endings."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    return [block.strip("\n").split("\n") for block in re.split(r"\n[ \t]*\n", normalised) if block.strip()]


def _cue(block: list[str], *, unescape: bool) -> TextSegment:
    """The cue in one block: its first timing line, then the text lines after it (malformed: raised)."""
    for i, line in enumerate(block):
        if "-->" not in line:
            continue
        match = _CUE_TIMES.match(line)
        if match is None:
            raise CaptionFormatError(f"cue '{block[0][:40]}': malformed timing line '{line[:80]}'")
        g = match.groups()
        start, end = _seconds(*g[:4]), _seconds(*g[4:])
        if start is None or end is None:
            raise CaptionFormatError(f"cue '{block[0][:40]}': minutes or seconds out of range in '{line}'")
        if end < start:
            raise CaptionFormatError(f"cue '{block[0][:40]}': ends ({end} s) before it starts ({start} s)")
        return TextSegment(_clean(block[i + 1 :], unescape=unescape), start, end, "caption")
    raise CaptionFormatError(f"block '{block[0][:40]}' has no timing line (HH:MM:SS,mmm --> HH:MM:SS,mmm)")


def _parse_cues(blocks: list[list[str]], *, unescape: bool) -> list[TextSegment]:
    """Every cue in file order (overlaps kept; the aligner handles them); cues with no text dropped."""
    cues = (_cue(block, unescape=unescape) for block in blocks)
    return [cue for cue in cues if cue.text]


def parse_srt(text: str) -> list[TextSegment]:
    """SubRip cues with their times (HH:MM:SS,mmm; a dot separator is accepted too)."""
    return _parse_cues(_blocks(text), unescape=False)


def parse_vtt(text: str) -> list[TextSegment]:
    """WebVTT cues; the header, NOTE, STYLE and REGION blocks are skipped, cue settings ignored.

    A block after them without a timing line is malformed (CaptionFormatError)."""
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
    decoded = decode_text(path.read_bytes(), name=path.name)
    text, charset = decoded.text, decoded.charset
    if suffix == ".srt":
        cues = parse_srt(text)
    elif suffix == ".vtt":
        cues = parse_vtt(text)
    else:
        paragraphs = (_clean(block, unescape=False) for block in _blocks(text))
        cues = [TextSegment(p, None, None, "caption") for p in paragraphs if p]
    return [TextSegment(c.text, c.start_s, c.end_s, c.source, charset) for c in cues]
