"""resemblyzer's GE2E voice encoder (256-d) on audio windows, batched.

Windows of equal length are embedded together: each becomes a 40-band mel spectrogram (resemblyzer's
own front end) and the LSTM's final state is the embedding. Windows shorter than 0.5 s are padded
with silence so every window gets a vector of the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register
from mmfs.errors import EncoderError, ErrorCode

SAMPLE_RATE = 16_000
MIN_SAMPLES = SAMPLE_RATE // 2


@register("audio.resemblyzer")
class ResemblyzerAudioEncoder(Encoder):
    """Voice embeddings of 16 kHz mono windows."""

    modality = "audio"
    dim = 256
    model_name = "resemblyzer VoiceEncoder (GE2E)"
    approx_memory_mb = 30

    def weight_files(self) -> list[Path]:
        """resemblyzer's bundled `pretrained.pt`."""
        import importlib.util

        spec = importlib.util.find_spec("resemblyzer")
        if spec is None or spec.origin is None:
            raise EncoderError(
                f"{self.name}: resemblyzer is not installed", code=ErrorCode.ENCODER_UNAVAILABLE
            )
        return [Path(spec.origin).parent / "pretrained.pt"]

    def _load(self) -> None:
        import torch

        # resemblyzer calls torch.load() without weights_only; torch >= 2.6 defaults it to True.
        if tuple(int(p) for p in torch.__version__.split(".")[:2]) < (2, 6):
            raise EncoderError(
                f"{self.name}: needs torch >= 2.6 (safe weights_only loading)",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            )
        from resemblyzer import VoiceEncoder

        try:
            self.model: Any = VoiceEncoder(
                device=self.device, verbose=False, weights_fpath=self.weight_files()[0]
            ).eval()
        except (OSError, RuntimeError) as err:
            raise EncoderError(
                f"{self.name}: cannot load weights ({err})", code=ErrorCode.ENCODER_UNAVAILABLE
            ) from err

    def preprocessing(self) -> dict[str, Any]:
        """resemblyzer's mel front end, on windows padded to at least 0.5 s."""
        return {
            "sample_rate": SAMPLE_RATE,
            "mel": "resemblyzer 40 bands, 25 ms / 10 ms",
            "min_samples": MIN_SAMPLES,
        }

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        import torch
        from resemblyzer.audio import wav_to_mel_spectrogram

        mels = [wav_to_mel_spectrogram(_pad(np.asarray(w, dtype=np.float32))) for w in batch]
        out = np.zeros((len(mels), self.dim), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, mel in enumerate(mels):
            by_length.setdefault(mel.shape[0], []).append(i)
        for indices in by_length.values():
            x = torch.from_numpy(np.stack([mels[i] for i in indices])).to(self.device)
            out[indices] = self.model(x).float().cpu().numpy()
        return out


def _pad(wav: np.ndarray) -> np.ndarray:
    return np.pad(wav, (0, MIN_SAMPLES - len(wav))) if len(wav) < MIN_SAMPLES else wav
