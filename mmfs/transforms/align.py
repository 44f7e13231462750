"""Align every modality of one media item onto its segment grid (DESIGN.md, Alignment).

A timed item is cut into windows of `segment_s`; each window holds the mean of the frame vectors whose
times fall inside it, the mean motion of the flow pairs whose midpoint falls inside it, the audio
window of the same span, and the text whose [start, end) overlaps it (untimed text overlaps all).
An image is one segment at t = 0; an untimed document is one segment per chunk. `fused` is the mean
of the vectors that live in the shared text space (text and image labels), so a text query reaches
every kind of item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mmfs.transforms.video.action_pooling import action_vector


@dataclass
class TimedVectors:
    """Vectors with a time each (frames, flow pairs), optionally with a string per row."""

    times_s: np.ndarray  # (n,)
    vectors: np.ndarray  # (n, d)
    labels: list[str] = field(default_factory=list)


@dataclass
class SpanVector:
    """A vector over a time span (audio window, text segment); times None when untimed."""

    start_s: float | None
    end_s: float | None
    vector: np.ndarray | None
    text: str = ""


@dataclass
class AlignInputs:
    """Everything extracted and embedded for one item, ready to align."""

    duration_s: float | None
    is_image: bool = False
    visual: TimedVectors | None = None
    label_vectors: TimedVectors | None = None
    motion: TimedVectors | None = None
    video: TimedVectors | None = None  # video-encoder clip vectors at their clips' middle times
    audio: list[SpanVector] = field(default_factory=list)
    text: list[SpanVector] = field(default_factory=list)


@dataclass
class Segment:
    """One aligned window: a vector per modality present (None when absent)."""

    segment_index: int
    start_s: float | None
    end_s: float | None
    vectors: dict[str, np.ndarray | None]
    modalities: list[str]
    transcript: str
    label_text: str


def segment_bounds(duration_s: float, segment_s: float, max_segments: int) -> list[tuple[float, float]]:
    """ceil(duration / segment_s) windows [k*s, min((k+1)*s, duration)), at least one."""
    n = max(1, math.ceil(round(duration_s / segment_s, 9)))
    n = min(n, max_segments)
    return [(k * segment_s, min((k + 1) * segment_s, duration_s)) for k in range(n)]


def align(
    inputs: AlignInputs,
    *,
    segment_s: float,
    max_segments: int,
    bounds: list[tuple[float, float]] | None = None,
) -> list[Segment]:
    """The segments of one item, by its kind: timed grid, single image, or document chunks.

    `bounds` replaces the fixed grid of a timed item with given windows (one per shot: `align.grid: shots`).
    """
    if inputs.is_image:
        return [_build(0, 0.0, 0.0, inputs, inclusive=True)]
    if inputs.duration_s is None or inputs.duration_s <= 0:
        return _document_segments(inputs)
    grid = bounds[:max_segments] if bounds else segment_bounds(inputs.duration_s, segment_s, max_segments)
    last = len(grid) - 1
    return [_build(k, s, e, inputs, inclusive=k == last) for k, (s, e) in enumerate(grid)]


def _document_segments(inputs: AlignInputs) -> list[Segment]:
    out = []
    for k, span in enumerate(inputs.text):
        vectors = _empty_vectors()
        vectors["text"] = _normalise(span.vector) if span.vector is not None else None
        vectors["fused"] = vectors["text"]
        mods = ["text"] if vectors["text"] is not None else []
        out.append(Segment(k, None, None, vectors, mods, span.text, ""))
    return out


def _empty_vectors() -> dict[str, np.ndarray | None]:
    return dict.fromkeys(("visual", "motion", "audio", "text", "labels", "fused", "clip", "video"))


def _build(k: int, start: float, end: float, inputs: AlignInputs, inclusive: bool) -> Segment:
    vectors = _empty_vectors()
    vectors["visual"] = _mean_in(inputs.visual, start, end, inclusive, normalise=True)
    vectors["labels"] = _mean_in(inputs.label_vectors, start, end, inclusive, normalise=True)
    vectors["motion"] = _mean_in(inputs.motion, start, end, inclusive, normalise=False)
    vectors["audio"] = _audio_for(inputs.audio, start, end)
    vectors["video"] = _mean_in(inputs.video, start, end, inclusive, normalise=True)
    vectors["clip"] = action_vector(
        _rows_in(inputs.visual, start, end, inclusive), _rows_in(inputs.motion, start, end, inclusive)
    )
    texts = [t for t in inputs.text if _overlaps(t, start, end)]
    text_vecs = [t.vector for t in texts if t.vector is not None]
    vectors["text"] = _normalise(np.mean(text_vecs, axis=0)) if text_vecs else None
    shared = [v for v in (vectors["text"], vectors["labels"]) if v is not None]
    vectors["fused"] = _normalise(np.mean(shared, axis=0)) if shared else None
    mods = [m for m in ("visual", "motion", "audio", "text") if vectors[m] is not None]
    transcript = " ".join(dict.fromkeys(t.text for t in texts if t.text))
    return Segment(
        k,
        start,
        end,
        vectors,
        mods,
        transcript,
        _labels_in(inputs.label_vectors, start, end, inclusive),
    )


def _in_window(times: np.ndarray, start: float, end: float, inclusive: bool) -> np.ndarray:
    upper = times <= end if inclusive else times < end
    return (times >= start) & upper


def _mean_in(
    tv: TimedVectors | None, start: float, end: float, inclusive: bool, normalise: bool
) -> np.ndarray | None:
    if tv is None or len(tv.times_s) == 0:
        return None
    mask = _in_window(tv.times_s, start, end, inclusive)
    if not mask.any():
        return None
    mean = tv.vectors[mask].mean(axis=0).astype(np.float32)
    return _normalise(mean) if normalise else mean


def _rows_in(tv: TimedVectors | None, start: float, end: float, inclusive: bool) -> np.ndarray | None:
    """The vectors whose times fall in the window (clip pooling takes them whole)."""
    if tv is None or len(tv.times_s) == 0:
        return None
    return tv.vectors[_in_window(tv.times_s, start, end, inclusive)]


def _labels_in(tv: TimedVectors | None, start: float, end: float, inclusive: bool) -> str:
    if tv is None or not tv.labels:
        return ""
    mask = _in_window(tv.times_s, start, end, inclusive)
    return "; ".join(dict.fromkeys(label for label, m in zip(tv.labels, mask, strict=True) if m))


def _audio_for(windows: list[SpanVector], start: float, end: float) -> np.ndarray | None:
    """The audio window that covers the same span (windows are cut on the same grid); on another grid
    (shots), the mean of the windows that overlap the span."""
    for w in windows:
        if w.vector is not None and w.start_s is not None and abs(w.start_s - start) < 1e-6:
            return w.vector.astype(np.float32)
    inside = [w.vector for w in windows if w.vector is not None and _overlaps(w, start, end)]
    return np.mean(inside, axis=0).astype(np.float32) if inside else None


def _overlaps(span: SpanVector, start: float, end: float) -> bool:
    if span.start_s is None or span.end_s is None:
        return True
    if end <= start:  # a zero-length window (an image) takes text at its instant
        return span.start_s <= start <= span.end_s
    return span.start_s < end and span.end_s > start


def _normalise(vec: np.ndarray) -> np.ndarray:
    vec = np.asarray(vec, dtype=np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
