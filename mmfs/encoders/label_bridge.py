"""The label bridge: a frame's place in the text space when no CLIP model is at hand.

Each ImageNet class is embedded once by the text encoder as words (its lemmas, its WordNet ancestors
and its gloss: "tabby; a kind of domestic cat, cat, feline...; a cat with a grey or tawny coat"), and
a frame's bridge vector is the classifier's probabilities over those class vectors (a soft label
vector: a family word reaches a species, a second guess still counts), plus the cues that labels
miss (named colours, drawing / black-and-white / photo, faces, text), embedded as a phrase.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.imagenet_wordnet import class_words

# tuned on `make bench-search-quality` (docs/search.md): 30 classes, flattened, beat the top 3 or all 1000
TOP_CLASSES = 30  # the soft label vector sums the classes the classifier believes most
PROBABILITY_POWER = 0.35  # p ** 0.35 before renormalising: second and tenth guesses still count
CUE_WEIGHT = 0.35  # weight of the cue phrase against the soft label vector
SHOWN_CLASSES = 5  # classes named in the bridge's words (frames.bridge_text, segments.label_text)
CACHE_DIR = Path.home() / ".cache" / "mmfs" / "label_bridge"
log = logging.getLogger(__name__)
_lock = threading.Lock()
_class_vectors: dict[str, np.ndarray] = {}


@dataclass(frozen=True)
class FrameHints:
    """What is known about one frame besides its classes: pixel cues and the image analysis."""

    colours: tuple[str, ...] = ()
    style: str = "photo"
    faces: int | None = None  # None: faces not analysed
    words: str = ""  # text read in the frame (OCR), "" when none or not read

    def phrase(self) -> str:
        """The cues as words: 'orange and black colours; a photo; a person's face; with text'."""
        parts = []
        if self.colours:
            parts.append(" and ".join(self.colours) + (" colours" if len(self.colours) > 1 else " colour"))
        parts.append(f"a {self.style}")
        if self.faces:
            parts.append("people's faces" if self.faces > 1 else "a person's face")
        if self.words:
            parts.append("with text")
        return "; ".join(parts)


def class_vectors(text_encoder: Encoder, cache_dir: Path | None = CACHE_DIR) -> np.ndarray:
    """(1000, d) text vectors of the ImageNet classes' words, embedded once per encoder and weights.

    Embedding the 1000 descriptions takes 10-90 s on a CPU, so the result is kept in memory and in
    `cache_dir` under a hash of the encoder's provenance and the words (any change makes a new file).
    """
    texts = [c.text() for c in class_words()]
    key = _cache_key(text_encoder, texts)
    with _lock:
        if key not in _class_vectors:
            _class_vectors[key] = _read_or_embed(text_encoder, texts, key, cache_dir)
        return _class_vectors[key]


def _cache_key(text_encoder: Encoder, texts: list[str]) -> str:
    """A hash of what the class vectors depend on: the encoder's provenance and the class words."""
    digest = hashlib.sha256(json.dumps([text_encoder.provenance(), texts], sort_keys=True).encode())
    return f"{text_encoder.name}-{digest.hexdigest()[:20]}"


def _read_or_embed(text_encoder: Encoder, texts: list[str], key: str, cache_dir: Path | None) -> np.ndarray:
    """The cached vectors when their file is there and well-formed, else embedded (and cached)."""
    path = cache_dir / f"{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(texts), text_encoder.dim) and np.isfinite(cached).all():
                return cached.astype(np.float32)
        except (OSError, ValueError):
            log.warning("label bridge: unreadable class-vector cache %s, embedding again", path)
    vectors = text_encoder.embed(texts)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vectors, allow_pickle=False)
            os.replace(tmp, path)  # whole files only: another process may be reading
        except OSError as err:
            log.warning("label bridge: cannot cache class vectors in %s: %s", cache_dir, err)
    return vectors


def soft_labels(
    probs: np.ndarray, top: int = TOP_CLASSES, power: float = PROBABILITY_POWER
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n, top) of each row's most probable classes and their weights: p ** power, summing to 1."""
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    weights = np.take_along_axis(probs, idx, axis=1).astype(np.float64) ** power
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return idx, weights


def bridge_vectors(
    text_encoder: Encoder, probs: np.ndarray, hints: Sequence[FrameHints]
) -> tuple[np.ndarray, list[str]]:
    """Each frame's bridge vector (n, d), L2-normalised, and its bridge words (classes, then cues)."""
    classes = class_vectors(text_encoder)
    idx, weights = soft_labels(probs)
    soft = np.einsum("nk,nkd->nd", weights, classes[idx].astype(np.float64))
    phrases = [h.phrase() for h in hints]
    cue = text_encoder.embed(phrases).astype(np.float64)
    soft /= np.maximum(np.linalg.norm(soft, axis=1, keepdims=True), 1e-12)
    mixed = soft + CUE_WEIGHT * cue
    mixed /= np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)
    names = [cw.name for cw in class_words()]
    texts = [
        ", ".join(names[int(i)] for i in row[:SHOWN_CLASSES]) + f"; {phrase}"
        for row, phrase in zip(idx, phrases, strict=True)
    ]
    return mixed.astype(np.float32), texts
