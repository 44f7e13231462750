"""The label bridge for a batch of items: each frame's hints (pixel cues, faces, OCR words) and bridge vector.

Called by the encode stage when the image encoder has no text space of its own (no CLIP): the frame's
class probabilities and hints go through `encoders.label_bridge`; the hints are also stored as
`frames` columns (`colours`, `style`, `has_text`, `bridge_text`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmfs.encoders.label_bridge import FrameHints, bridge_vectors
from mmfs.transforms.image_cues import image_cues

OCR_SOURCE = "ocr"


def frame_hints(it: Any) -> list[FrameHints]:
    """The hints of each sampled frame of an item (`Enriched`), in frame order."""
    frames = it.ex.frames
    faces = it.analysis.faces if it.analysis is not None else None
    ocr = [t for t in it.ex.texts if t.source == OCR_SOURCE]
    out = []
    for i, (pixels, t) in enumerate(zip(frames.frames, frames.times_s, strict=True)):
        cues = image_cues(pixels)
        words = " ".join(s.text for s in ocr if s.start_s is None or s.start_s <= t < (s.end_s or t))
        n_faces = len(faces[i]) if faces is not None and i < len(faces) else None
        out.append(FrameHints(cues.colours, cues.style, n_faces, words))
    return out


def bridge_batch(owners: list[Any], probs: np.ndarray, text_encoder: Any) -> np.ndarray:
    """Bridge vectors of every frame of `owners` (their frames in order); sets each item's hints and words."""
    hints = [h for it in owners for h in frame_hints(it)]
    vectors, texts = bridge_vectors(text_encoder, probs, hints)
    start = 0
    for it in owners:
        n = len(it.ex.frames.times_s)
        it.frame_hints, it.bridge_texts = hints[start : start + n], texts[start : start + n]
        start += n
    return vectors


def hint_columns(it: Any, i: int) -> dict[str, Any]:
    """The `frames` cue columns of frame `i` (absent when the bridge did not run: CLIP, or a kept item)."""
    hints = getattr(it, "frame_hints", None)
    if not hints or i >= len(hints):
        return {}
    h = hints[i]
    return {
        "colours": list(h.colours),
        "style": h.style,
        "has_text": bool(h.words),
        "bridge_text": it.bridge_texts[i],
    }
