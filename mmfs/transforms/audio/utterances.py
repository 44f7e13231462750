"""Speech utterances from voice-activity probabilities: the spans that speech recognition decodes.

Each VAD chunk (32 ms for silero) has a speech probability. A chunk at or over `threshold` starts
speech, which goes on while chunks stay over `threshold - hysteresis`; spans closer than `merge_gap_s`
join, spans shorter than `min_speech_s` go, each keeps `pad_s` either side (word edges the VAD
under-reads), and one longer than `max_s` is cut at its least speech-like chunk. Music, noise and
silence give no span, so they cost the recogniser nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HYSTERESIS = 0.15  # silero's own: speech ends below threshold - 0.15


@dataclass(frozen=True)
class UtteranceParams:
    """How VAD chunks become utterances (the `audio.asr_*` config keys)."""

    threshold: float = 0.5
    min_speech_s: float = 0.25
    merge_gap_s: float = 0.5
    pad_s: float = 0.3
    max_s: float = 20.0


@dataclass(frozen=True)
class Utterance:
    """A span of an item's audio, in seconds, that recognition decodes as one utterance."""

    start_s: float
    end_s: float


def utterances(
    probs: np.ndarray, chunk_s: float, duration_s: float, params: UtteranceParams
) -> list[Utterance]:
    """The speech utterances of an item from its chunk probabilities (chunk k spans k*chunk_s onwards)."""
    p = np.asarray(probs, dtype=np.float32)
    if p.size == 0 or duration_s <= 0:
        return []
    spans = _merge(_runs(p, params.threshold), params.merge_gap_s / chunk_s, params.max_s / chunk_s)
    spans = [(a, b) for a, b in spans if (b - a) * chunk_s >= params.min_speech_s]
    spans = [piece for a, b in spans for piece in _split(p, a, b, max(1, int(params.max_s / chunk_s)))]
    return _padded(spans, chunk_s, duration_s, params.pad_s)


def _runs(p: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """[start, end) chunk runs of speech, with hysteresis (a threshold of 0 makes all of it speech)."""
    low = max(0.0, threshold - HYSTERESIS) if threshold > 0 else -1.0
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for k, value in enumerate(p.tolist()):
        if start is None and value >= threshold:
            start = k
        elif start is not None and value < low:
            runs.append((start, k))
            start = None
    if start is not None:
        runs.append((start, len(p)))
    return runs


def _merge(runs: list[tuple[int, int]], max_gap: float, max_len: float) -> list[tuple[int, int]]:
    """Join runs separated by at most `max_gap` chunks while the joined span stays within `max_len`."""
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if out and a - out[-1][1] <= max_gap and b - out[-1][0] <= max_len:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _split(p: np.ndarray, a: int, b: int, max_len: int) -> list[tuple[int, int]]:
    """A span cut into pieces of at most `max_len` chunks, each cut at the least speech-like chunk
    of the second half of what is left (a pause, when there is one)."""
    pieces = []
    while b - a > max_len:
        lo = a + max_len // 2
        cut = lo + int(np.argmin(p[lo : a + max_len]))
        cut = max(cut, a + 1)
        pieces.append((a, cut))
        a = cut
    pieces.append((a, b))
    return pieces


def _padded(spans: list[tuple[int, int]], chunk_s: float, duration_s: float, pad_s: float) -> list[Utterance]:
    """Spans in seconds, widened by `pad_s` each side within the audio, never overlapping a neighbour."""
    out: list[Utterance] = []
    for i, (a, b) in enumerate(spans):
        start, end = a * chunk_s, min(b * chunk_s, duration_s)
        lo = 0.0 if i == 0 else (spans[i - 1][1] * chunk_s + start) / 2
        hi = duration_s if i == len(spans) - 1 else (end + spans[i + 1][0] * chunk_s) / 2
        start, end = max(lo, start - pad_s), min(hi, end + pad_s)
        if end > start:
            out.append(Utterance(round(start, 4), round(end, 4)))
    return out
