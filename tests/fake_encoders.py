"""Deterministic stand-in encoders (`test.*`) for the tests that check keys, ledgers and exactly-once.

A config loads them with `encoders: {plugins: [tests.fake_encoders], text: test.text, ...}`, so
subprocesses (the chaos and resume tests kill real `mmfs run` processes) register them too. Each
vector is a pure function of the input's bytes: two runs over the same media give the same values,
which the resume and chaos tests compare. The real models stay in the tests that are about them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register

DIM = 16
LABELS = ("harbour", "lighthouse", "ferry", "gull", "pier", "tide", "lamp", "keeper")


def _vector(data: bytes) -> np.ndarray:
    """A 16-d vector drawn from the sha256 of `data` (never zero, so it normalises)."""
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32) + 1e-3


class _Fake(Encoder):
    """No weights and nothing to load: the contract's bookkeeping runs, the model does not."""

    dim = DIM
    approx_memory_mb = 1

    def weight_files(self) -> list[Path]:
        return []

    def _load(self) -> None:
        return None


@register("test.text")
class FakeText(_Fake):
    """Text -> a vector of its UTF-8 bytes."""

    modality = "text"
    model_name = "fake text"

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        return np.stack([_vector(str(text).encode()) for text in batch])


@register("test.image")
class FakeImage(_Fake):
    """Pixels -> a vector of their bytes, and two labels picked by the same hash."""

    modality = "image"
    model_name = "fake image"

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        return np.stack([_vector(np.ascontiguousarray(img).tobytes()) for img in batch])

    def embed_and_classify(
        self, batch: Sequence[np.ndarray], top_k: int = 5
    ) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        """Vectors and `top_k` labels (at most 2) with made-up probabilities, best first."""
        vectors = self.embed(batch)
        labels = []
        for img in batch:
            h = hashlib.sha256(np.ascontiguousarray(img).tobytes()).digest()
            picked = [LABELS[h[0] % len(LABELS)], LABELS[h[1] % len(LABELS)]]
            labels.append([(name, 0.6 - 0.2 * i) for i, name in enumerate(dict.fromkeys(picked))][:top_k])
        return vectors, labels


@register("test.audio")
class FakeAudio(_Fake):
    """Samples -> a vector of their float32 bytes."""

    modality = "audio"
    model_name = "fake audio"

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        return np.stack([_vector(np.asarray(x, dtype=np.float32).tobytes()) for x in batch])


FAKE_ENCODERS = {
    "plugins": ["tests.fake_encoders"],
    "text": "test.text",
    "image": "test.image",
    "audio": "test.audio",
}
