"""The label bridge for a batch of items: each frame's hints (pixel cues, faces, OCR words) and bridge vector.

Called by the encode stage when the image encoder has no text space of its own (no CLIP): the frame's
class probabilities and hints go through `encoders.label_bridge`; the hints are also stored as
`frames` columns (`colours`, `style`, `has_text`, `bridge_text`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmfs.encoders.label_bridge import FrameHints, bridge_vectors
from mmfs.stages.items import Item
from mmfs.transforms.image.cues import image_cues

OCR_SOURCE = "ocr"


def frame_hints(it: Item) -> list[FrameHints]:
    """The hints of each frame an item keeps, in frame order."""
    frames = it.frames
    assert frames is not None
    faces = it.analysis.faces if it.analysis is not None else None
    ocr = [t for t in it.texts if t.source == OCR_SOURCE]
    out = []
    for i, (pixels, t) in enumerate(zip(frames.frames, frames.times_s, strict=True)):
        cues = image_cues(pixels)
        words = " ".join(s.text for s in ocr if s.start_s is None or s.start_s <= t < (s.end_s or t))
        n_faces = len(faces[i]) if faces is not None and i < len(faces) else None
        out.append(FrameHints(cues.colours, cues.style, n_faces, words))
    return out


def bridge_batch(
    owners: list[Item], probs: np.ndarray, text_encoder: Any
) -> tuple[np.ndarray, list[FrameHints], list[str]]:
    """Bridge vectors of every frame of `owners` (in order), with each frame's hints and words."""
    hints = [h for it in owners for h in frame_hints(it)]
    vectors, texts = bridge_vectors(text_encoder, probs, hints)
    return vectors, hints, list(texts)


def hint_columns(it: Item, i: int) -> dict[str, Any]:
    """The `frames` cue columns of frame `i` (absent when the bridge did not run: CLIP, or a kept item)."""
    hints = it.vectors.frame_hints
    if not hints or i >= len(hints):
        return {}
    h = hints[i]
    return {
        "colours": list(h.colours),
        "style": h.style,
        "has_text": bool(h.words),
        "bridge_text": it.vectors.bridge_texts[i],
    }
