"""Fuse a segment's per-modality vectors into one `joint` vector, by a named method.

`concat` (the default): each present modality's vector L2-normalised, absent ones zero, concatenated
in MODALITIES order and scaled by 1/sqrt(present) so the whole is unit length; `joint_mask` says
which blocks are real. Two segments' dot product is then the mean similarity over the modalities
both have blocks for (scaled by how many each has). `learned`: that concatenation through a small
linear projection trained on the store's own segments (`mmfs train-fusion`), normalised.
Pure numpy: no model or store imports (the projection's weights are passed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

MODALITIES: tuple[str, ...] = ("visual", "motion", "audio", "text")


def concat_width(widths: Mapping[str, int]) -> int:
    """Width of the concatenation: the sum of the modalities' widths."""
    return int(sum(widths[m] for m in MODALITIES))


def concat_joint(
    vectors: Mapping[str, np.ndarray | None], widths: Mapping[str, int]
) -> tuple[np.ndarray | None, list[bool]]:
    """(unit-length concatenation, mask) of the present modalities; (None, all False) when none is."""
    mask = [_usable(vectors.get(m)) for m in MODALITIES]
    present = sum(mask)
    if present == 0:
        return None, mask
    blocks = []
    for m, here in zip(MODALITIES, mask, strict=True):
        if here:
            v = np.asarray(vectors[m], dtype=np.float32)
            if v.shape != (widths[m],):
                raise ValueError(f"{m} vector has shape {v.shape}, expected ({widths[m]},)")
            blocks.append(v / np.linalg.norm(v))
        else:
            blocks.append(np.zeros(widths[m], dtype=np.float32))
    return (np.concatenate(blocks) / np.sqrt(present)).astype(np.float32), mask


@dataclass(frozen=True)
class Projection:
    """A trained linear map from the concatenation to `out_dim` (weight (out, in), bias (out,))."""

    weight: np.ndarray
    bias: np.ndarray

    @property
    def out_dim(self) -> int:
        """Width of the projected vector."""
        return int(self.weight.shape[0])

    def apply(self, concat: np.ndarray) -> np.ndarray | None:
        """The normalised projection of one concatenation (None when it projects to zero)."""
        y = self.weight @ concat + self.bias
        norm = float(np.linalg.norm(y))
        return (y / norm).astype(np.float32) if np.isfinite(norm) and norm > 0 else None


def _usable(v: np.ndarray | None) -> bool:
    """A vector that can be normalised: present, finite, not all zero."""
    if v is None:
        return False
    arr = np.asarray(v, dtype=np.float32)
    return bool(np.isfinite(arr).all() and np.linalg.norm(arr) > 0)
