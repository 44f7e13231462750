"""`mmfs train-fusion`: learn a small linear projection of the segments' concatenated vectors.

Trained on the store's own aligned segments, self-supervised: two views of each segment are made
by dropping modalities at random (at least one kept), and an InfoNCE loss pulls a segment's two
projected views together and pushes other segments' apart. The projection then maps segments with
different subsets of modalities (a video with sound, the same scene without) near each other.
A few hundred Adam steps on a CPU take seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmfs.errors import ConfigError
from mmfs.stages.fusion import save_projection
from mmfs.store.db import Store
from mmfs.transforms.fusion import MODALITIES, Projection, concat_joint

if TYPE_CHECKING:
    import torch


@dataclass
class FusionTraining:
    """What a training run did (printed by the command, stored in the file's metadata)."""

    path: str
    sha256: str
    n_segments: int
    in_dim: int
    out_dim: int
    steps: int
    loss_first: float
    loss_last: float
    objective: str = "InfoNCE between two modality-dropout views (temperature 0.1)"


def segment_matrix(store: Store) -> tuple[np.ndarray, dict[str, int]]:
    """(n, d) concatenations of the store's segments that have any vector, and the modality widths."""
    table = store.table("segments")
    widths = {m: _width(table.schema.field(m).type) for m in MODALITIES}
    rows = store.read("segments", list(MODALITIES)).to_pylist()
    out = []
    for row in rows:
        vectors = {m: None if row[m] is None else np.asarray(row[m], dtype=np.float32) for m in MODALITIES}
        concat, _ = concat_joint(vectors, widths)
        if concat is not None:
            out.append(concat)
    if len(out) < 2:
        raise ConfigError(f"the store has {len(out)} segment(s) with vectors; train-fusion needs at least 2")
    return np.stack(out), widths


def train_fusion(
    store: Store, out: Path, *, dim: int = 256, steps: int = 200, seed: int = 0, threads: int | None = None
) -> FusionTraining:
    """Train the projection on the store's segments and save it to `out` (safetensors)."""
    import torch
    import torch.nn.functional as F

    from mmfs.encoders.execution import apply_cpu_threads

    apply_cpu_threads(threads)
    x_np, widths = segment_matrix(store)
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(x_np)
    blocks = _block_index(widths)
    layer = torch.nn.Linear(x.shape[1], dim)
    with torch.no_grad():  # seeded init, independent of the global RNG
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) / np.sqrt(x.shape[1]))
        layer.bias.zero_()
    optimiser = torch.optim.Adam(layer.parameters(), lr=1e-3)
    batch = min(256, x.shape[0])
    losses = []
    for _ in range(steps):
        idx = torch.randperm(x.shape[0], generator=gen)[:batch]
        a = _dropout_view(x[idx], blocks, gen)
        b = _dropout_view(x[idx], blocks, gen)
        za, zb = F.normalize(layer(a), dim=1), F.normalize(layer(b), dim=1)
        logits = za @ zb.T / 0.1
        target = torch.arange(len(idx))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    projection = Projection(layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())
    result = FusionTraining(str(out), "", int(x.shape[0]), int(x.shape[1]), dim, steps, losses[0], losses[-1])
    meta: dict[str, object] = {k: v for k, v in asdict(result).items() if k not in ("path", "sha256")}
    result.sha256 = save_projection(
        out, projection, {**meta, "widths": widths, "modalities": list(MODALITIES)}
    )
    return result


def _width(arrow_type: object) -> int:
    """The list size of a fixed-size vector column."""
    size = getattr(arrow_type, "list_size", None)
    if size is None:
        raise ConfigError(f"segments column type {arrow_type} is not a fixed-size vector")
    return int(size)


def _block_index(widths: dict[str, int]) -> list[tuple[int, int]]:
    """(start, stop) of each modality's block in the concatenation."""
    out, start = [], 0
    for m in MODALITIES:
        out.append((start, start + widths[m]))
        start += widths[m]
    return out


def _dropout_view(x: torch.Tensor, blocks: list[tuple[int, int]], gen: torch.Generator) -> torch.Tensor:
    """A copy of `x` with each present block dropped with probability 1/2 (one always kept), renormalised."""
    import torch

    present = torch.stack([x[:, a:b].abs().sum(dim=1) > 0 for a, b in blocks], dim=1)
    keep = present & (torch.rand(present.shape, generator=gen) < 0.5)
    none = ~keep.any(dim=1)
    if none.any():  # keep one random present block where all were dropped
        scores = torch.rand(present.shape, generator=gen) * present
        keep[none, scores[none].argmax(dim=1)] = True
    view = x.clone()
    for j, (a, b) in enumerate(blocks):
        view[:, a:b] *= keep[:, j : j + 1]
    n = keep.sum(dim=1, keepdim=True).clamp_min(1)
    return view * torch.sqrt(present.sum(dim=1, keepdim=True) / n)
