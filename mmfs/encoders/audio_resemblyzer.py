"""resemblyzer's GE2E voice encoder (256-d speaker embeddings) on 16 kHz mono windows, batched.

Only resemblyzer's weight file is used: the 3-layer LSTM + linear network is rebuilt here and its
state dict read with `torch.load(weights_only=True)` (resemblyzer's own loader leaves that to torch's
default). The front end is resemblyzer's `embed_utterance`, reproduced and batched: volume raised to
-30 dBFS (never lowered), 40-band power mel at 25 ms / 10 ms, 1.6 s partials at 1.3 per second,
each partial's embedding normalised and averaged. A window shorter than 1.6 s is zero-padded to one
partial, as resemblyzer does. Silence trimming (`preprocess_wav`'s VAD) is not applied: windows are
aligned to the segment grid, and trimming would change what a window covers (or empty it).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register
from mmfs.encoders.weights import built_from, load_into, load_numpy_state_dict, load_state_dict
from mmfs.errors import EncoderError, ErrorCode

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_RATE = 1.3  # partials per second
MIN_COVERAGE = 0.75  # a last partial less covered than this is dropped (unless it is the only one)
TARGET_DBFS = -30.0
HIDDEN = 256
LAYERS = 3


@register("audio.resemblyzer")
class ResemblyzerAudioEncoder(Encoder):
    """Voice embeddings of float32 mono 16 kHz windows of any length (short ones padded to 1.6 s)."""

    modality = "audio"
    dim = 256
    model_name = "resemblyzer VoiceEncoder (GE2E, 3x256 LSTM)"
    package = "resemblyzer"
    pinned_sha256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
    approx_memory_mb = 30
    cuda_autocast = False  # a 3x256 LSTM gains nothing from bf16, and cuDNN's bf16 RNNs vary by GPU
    model: Any = None

    def weight_files(self) -> list[Path]:
        """resemblyzer's bundled `pretrained.pt` (found without importing the package)."""
        spec = importlib.util.find_spec("resemblyzer")
        if spec is None or not spec.submodule_search_locations:
            raise EncoderError(
                f"{self.name}: resemblyzer is not installed", code=ErrorCode.ENCODER_UNAVAILABLE
            )
        return [Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"]

    @property
    def uses_torch(self) -> bool:
        """On CUDA, or on a CPU with `cpu_engine` "torch"; otherwise the LSTM runs in NumPy (no torch)."""
        return self.device != "cpu" or self.cpu_engine == "torch"

    def _load(self) -> None:
        if not self.uses_torch:
            saved = load_numpy_state_dict(self.weight_files()[0], owner=self.name).get("model_state")
            if not isinstance(saved, Mapping):
                raise EncoderError(
                    f"{self.name}: cannot load weights (the checkpoint holds no 'model_state' mapping)",
                    code=ErrorCode.ENCODER_UNAVAILABLE,
                )
            self.model = built_from(self.name, NumpyVoiceLSTM, saved)
            return
        from torch import nn

        # Keys match the checkpoint's "model_state" ("lstm.*", "linear.*"), so no wrapper class is needed.
        model = nn.ModuleDict(
            {"lstm": nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True), "linear": nn.Linear(HIDDEN, self.dim)}
        )
        checkpoint = load_state_dict(self.weight_files()[0], owner=self.name)  # weights_only: no pickled code
        saved = checkpoint.get("model_state")
        if not isinstance(saved, Mapping):
            raise EncoderError(
                f"{self.name}: cannot load weights (the checkpoint holds no 'model_state' mapping)",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            )
        state = {k: v for k, v in saved.items() if not k.startswith("similarity_")}
        self.model = load_into(model, state, owner=self.name).eval().to(self.device)

    def preprocessing(self) -> dict[str, Any]:
        """resemblyzer's front end, as applied here."""
        return {
            "sample_rate": SAMPLE_RATE,
            "volume": f"raised to {TARGET_DBFS} dBFS, never lowered",
            "silence_trimming": False,
            "mel": {
                "n_fft": N_FFT,
                "hop_length": HOP,
                "n_mels": N_MELS,
                "power": 2.0,
                "pad_mode": "constant",
            },
            "partial_frames": PARTIAL_FRAMES,
            "partials_per_s": PARTIAL_RATE,
            "min_coverage": MIN_COVERAGE,
            "short_windows": "zero-padded to one partial",
        }

    def input_problem(self, item: Any) -> str | None:
        """Only non-empty 1-D float arrays (mono samples) are accepted."""
        if not isinstance(item, np.ndarray) or item.dtype.kind != "f":
            return f"expected a float numpy waveform, got {type(item).__name__} {getattr(item, 'dtype', '')}"
        if item.ndim != 1 or item.size == 0:
            return f"expected a non-empty 1-D mono waveform, got shape {item.shape}"
        return None

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        mels: list[np.ndarray] = []
        owner: list[int] = []
        for index, wav in enumerate(batch):
            partials = partial_mels(normalize_volume(np.asarray(wav, dtype=np.float32)))
            mels.extend(partials)
            owner.extend([index] * len(partials))
        if not self.uses_torch:
            partial_np = self.model.embed(np.stack(mels))
            sums_np = np.zeros((len(batch), self.dim), np.float32)
            np.add.at(sums_np, np.asarray(owner), partial_np)
            return sums_np  # the mean's direction; finish() normalises
        import torch

        x = torch.from_numpy(np.stack(mels)).to(self.device)
        _, (hidden, _) = self.model["lstm"](x)
        partial = torch.relu(self.model["linear"](hidden[-1]))
        partial = partial / partial.norm(dim=1, keepdim=True).clamp_min(1e-12)
        sums = torch.zeros(len(batch), self.dim, device=partial.device, dtype=partial.dtype)
        sums.index_add_(0, torch.tensor(owner, device=partial.device), partial)
        return sums.float().cpu().numpy()  # the mean's direction; finish() normalises


class NumpyVoiceLSTM:
    """resemblyzer's network (3-layer LSTM, linear + ReLU, unit norm per partial) in NumPy, as torch's
    `nn.LSTM` computes it (gates i, f, g, o; both biases added): the CPU engine, no torch import."""

    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for layer in range(LAYERS):
            w_ih = np.asarray(state[f"lstm.weight_ih_l{layer}"], np.float32)
            w_hh = np.asarray(state[f"lstm.weight_hh_l{layer}"], np.float32)
            bias = np.asarray(state[f"lstm.bias_ih_l{layer}"], np.float32) + np.asarray(
                state[f"lstm.bias_hh_l{layer}"], np.float32
            )
            if w_hh.shape != (4 * HIDDEN, HIDDEN):
                raise ValueError(
                    f"lstm layer {layer}: hidden weights {w_hh.shape}, expected {(4 * HIDDEN, HIDDEN)}"
                )
            # gates reordered i, f, o, g: one sigmoid over the first three quarters, one tanh after
            order = np.r_[0 : 2 * HIDDEN, 3 * HIDDEN : 4 * HIDDEN, 2 * HIDDEN : 3 * HIDDEN]
            self.layers.append(
                (np.ascontiguousarray(w_ih[order].T), np.ascontiguousarray(w_hh[order].T), bias[order])
            )
        self.linear_w = np.ascontiguousarray(np.asarray(state["linear.weight"], np.float32).T)
        self.linear_b = np.asarray(state["linear.bias"], np.float32)

    def embed(self, mels: np.ndarray) -> np.ndarray:
        """(partials, frames, 40) mels to (partials, 256) unit-norm partial embeddings."""
        x = np.asarray(mels, np.float32)
        n, steps, _ = x.shape
        h = np.zeros((n, HIDDEN), np.float32)
        for w_ih, w_hh, bias in self.layers:
            inputs = (x.reshape(n * steps, -1) @ w_ih).reshape(n, steps, 4 * HIDDEN)
            inputs += bias
            h = np.zeros((n, HIDDEN), np.float32)
            c = np.zeros((n, HIDDEN), np.float32)
            outputs = np.empty((n, steps, HIDDEN), np.float32)
            for t in range(steps):
                gates = inputs[:, t] + h @ w_hh
                ifo = _sigmoid(gates[:, : 3 * HIDDEN])
                c = ifo[:, HIDDEN : 2 * HIDDEN] * c + ifo[:, :HIDDEN] * np.tanh(gates[:, 3 * HIDDEN :])
                h = ifo[:, 2 * HIDDEN :] * np.tanh(c)
                outputs[:, t] = h
            x = outputs
        partial = np.maximum(h @ self.linear_w + self.linear_b, 0.0)
        norms = np.maximum(np.linalg.norm(partial, axis=1, keepdims=True), 1e-12)
        return (partial / norms).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function through tanh: no overflow for large negative inputs."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def normalize_volume(wav: np.ndarray) -> np.ndarray:
    """Raise the level to TARGET_DBFS when quieter (resemblyzer's `increase_only`); silence stays silent."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    target = 10 ** (TARGET_DBFS / 20)
    if not 0.0 < rms < target:  # also false for NaN, which then reaches the finiteness check
        return wav
    return (wav * (target / rms)).astype(np.float32)


def partial_mels(wav: np.ndarray) -> list[np.ndarray]:
    """(160, 40) mel partials covering the window, as resemblyzer's `compute_partial_slices` cuts them."""
    from mmfs.transforms.audio.mel_lean import melspectrogram  # librosa's, without librosa's modules

    starts = partial_starts(len(wav))
    needed = (starts[-1] + PARTIAL_FRAMES) * HOP
    if needed > len(wav):
        wav = np.pad(wav, (0, needed - len(wav)))
    mel = melspectrogram(wav, SAMPLE_RATE, N_FFT, HOP, N_MELS)
    frames = mel.astype(np.float32).T
    return [frames[s : s + PARTIAL_FRAMES] for s in starts]


def partial_starts(n_samples: int) -> list[int]:
    """First mel frame of each 1.6 s partial, 1.3 partials per second, the last kept if 75% covered."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = round(SAMPLE_RATE / PARTIAL_RATE / HOP)
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (n_samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts
