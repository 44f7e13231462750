"""The encoder contract (Beam RunInference's split): load once per process, embed batches.

Every encoder returns L2-normalised float32 rows, checks them for NaN/Inf before anyone stores them,
and describes itself (provenance, resources) so the store can record what made each vector.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.devices import resolve_device
from mmfs.errors import EncoderError, ErrorCode


@dataclass(frozen=True)
class Resources:
    """What an encoder needs to run."""

    device: str
    gpu: bool
    approx_memory_mb: int


def sha256_files(paths: Sequence[Path]) -> str:
    """sha256 over the bytes of the weight files, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


class Encoder(ABC):
    """A pretrained model behind a name: `load()` once, `embed(batch)` many times."""

    name: str = ""
    modality: str = ""
    dim: int = 0
    model_name: str = ""
    approx_memory_mb: int = 200

    def __init__(self, *, device: str = "auto", batch_size: int = 32) -> None:
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self._loaded = False
        self._weights_sha256: str | None = None

    def load(self) -> None:
        """Load the weights (idempotent)."""
        if not self._loaded:
            self._load()
            self._loaded = True

    @abstractmethod
    def _load(self) -> None:
        """Load weights from the installed package (weights_only / safetensors)."""

    @abstractmethod
    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        """Vectors for one batch of at most batch_size inputs."""

    @abstractmethod
    def weight_files(self) -> list[Path]:
        """The files holding the weights (hashed for provenance)."""

    def preprocessing(self) -> dict[str, Any]:
        """Parameters of the input preprocessing (recorded as provenance)."""
        return {}

    def embed(self, batch: Sequence[Any]) -> np.ndarray:
        """(n, dim) float32, L2-normalised rows; NaN/Inf or zero rows raise EncoderError."""
        import torch

        self.load()
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(batch), self.batch_size):
                parts.append(
                    np.asarray(self._embed_batch(batch[start : start + self.batch_size]), dtype=np.float32)
                )
        return self._checked(np.concatenate(parts, axis=0))

    def _checked(self, vectors: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(vectors, axis=1)
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1) | ~(norms > 0))
        if bad.size:
            raise EncoderError(
                f"{self.name}: non-finite or zero embedding for input {int(bad[0])}",
                code=ErrorCode.NONFINITE_EMBEDDING,
            )
        return (vectors / norms[:, None]).astype(np.float32)

    def weights_sha256(self) -> str:
        """sha256 of the weight files, computed once."""
        if self._weights_sha256 is None:
            self._weights_sha256 = sha256_files(self.weight_files())
        return self._weights_sha256

    def provenance(self) -> dict[str, str]:
        """What made these vectors: stored in the schema metadata of every column they fill."""
        from mmfs import __version__

        return {
            "name": self.name,
            "model": self.model_name,
            "dim": str(self.dim),
            "weights_sha256": self.weights_sha256(),
            "preprocessing": json.dumps(self.preprocessing(), sort_keys=True),
            "code_version": __version__,
        }

    def resources(self) -> Resources:
        """Device and memory this encoder uses."""
        return Resources(self.device, self.device.startswith("cuda"), self.approx_memory_mb)
