"""Recognised words: the recognisers' tokens cleaned into words with times, and Whisper's timed output
parsed. Each VAD utterance's words become one `text` row with `source = "asr"` (stages/speech.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALTERNATE = re.compile(r"\(\d+\)$")  # pocketsphinx marks pronunciation variants: "was(2)"
_TIMESTAMP = re.compile(r"<\|(\d+(?:\.\d+)?)\|>")  # Whisper's time tokens, "<|1.08|>"
_SPECIAL = re.compile(r"<\|[^|]*\|>")  # its other special tokens, "<|en|>", "<|endoftext|>"
_FILLERS = frozenset({"<s>", "</s>", "<sil>", "[noise]", "[laugh]", "[breath]", "[cough]", "[um]", "[uh]"})


@dataclass(frozen=True)
class Word:
    """One recognised word, its span in seconds from the start of the audio decoded, and a confidence."""

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
