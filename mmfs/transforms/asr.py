"""Recognised words into timed transcript lines: the `text` rows with `source = "asr"`.

A recogniser gives words with times; lines break at a pause or when a line grows too long, so each
line is a caption-like span that the segment grid aligns like any caption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mmfs.transforms.captions import TextSegment

_ALTERNATE = re.compile(r"\(\d+\)$")  # pocketsphinx marks pronunciation variants: "was(2)"
_TIMESTAMP = re.compile(r"<\|(\d+(?:\.\d+)?)\|>")  # Whisper's time tokens, "<|1.08|>"
_SPECIAL = re.compile(r"<\|[^|]*\|>")  # its other special tokens, "<|en|>", "<|endoftext|>"
_FILLERS = frozenset({"<s>", "</s>", "<sil>", "[noise]", "[laugh]", "[breath]", "[cough]", "[um]", "[uh]"})


@dataclass(frozen=True)
class Word:
    """One recognised word, its span in seconds from the start of the item, and a confidence."""

    text: str
    start_s: float
    end_s: float
    confidence: float | None = None


def clean_word(raw: str) -> str | None:
    """The spoken word of a recogniser token, or None for silence, noise and sentence markers."""
    word = _ALTERNATE.sub("", raw.strip())
    if not word or word.lower() in _FILLERS or (word.startswith("[") and word.endswith("]")):
        return None
    return word


def transcript_lines(
    words: list[Word], *, max_pause_s: float = 0.5, max_line_s: float = 8.0
) -> list[TextSegment]:
    """Group words (in time order) into lines at pauses longer than max_pause_s or spans past max_line_s."""
    lines: list[TextSegment] = []
    current: list[Word] = []
    for word in sorted(words, key=lambda w: w.start_s):
        if current and (
            word.start_s - current[-1].end_s > max_pause_s or word.end_s - current[0].start_s > max_line_s
        ):
            lines.append(_line(current))
            current = []
        current.append(word)
    if current:
        lines.append(_line(current))
    return lines


def _line(words: list[Word]) -> TextSegment:
    return TextSegment(" ".join(w.text for w in words), words[0].start_s, words[-1].end_s, "asr")


def timestamped_pieces(decoded: str) -> list[tuple[str, float, float | None]]:
    """(text, start, end) of each piece of a Whisper output decoded with its time tokens.

    A piece is the text between two time tokens; text with no closing time (or no times at all) has
    end None: it runs to the end of the audio decoded. Other special tokens are dropped.
    """
    parts = _TIMESTAMP.split(decoded)  # text, time, text, time, ..., text
    out: list[tuple[str, float, float | None]] = []
    times = [float(t) for t in parts[1::2]]
    texts = [_SPECIAL.sub("", t).strip() for t in parts[0::2]]
    for i, text in enumerate(texts):
        if not text:
            continue
        start = times[i - 1] if i > 0 else 0.0
        end = max(start, times[i]) if i < len(times) else None
        out.append((text, start, end))
    return out
