"""The torchaudio backend: the same per-frame block as `audio.librosa_backend.librosa_block`, CPU or CUDA.

torchaudio's own spectrogram and mel filterbank; statistics with librosa's formulas. torch is imported
only when this backend is chosen. It imports `audio.spec` only, never the librosa backend.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torchaudio

from mmfs.config import AudioConfig
from mmfs.transforms.audio.spec import AMIN, BlockFeatures, mel_norm, win_length

_KEY_FIELDS = ("n_fft", "win_length", "window", "fmin", "fmax", "n_mels", "mel_norm", "mel_scale")
_WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window}


def device_for(cfg: AudioConfig) -> torch.device:
    """`audio.device`: cuda when asked (or when auto and present), else the CPU."""
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _constants(sr: int, cfg: AudioConfig, device: torch.device) -> dict[str, Any]:
    """Window, mel filterbank and bin frequencies, built once per config."""
    key = tuple(getattr(cfg, f) for f in _KEY_FIELDS)
    return _cached_constants(sr, key, str(device))


@functools.lru_cache(maxsize=16)
def _cached_constants(sr: int, key: tuple[Any, ...], where: str) -> dict[str, Any]:
    cfg = AudioConfig(sample_rate=sr, **dict(zip(_KEY_FIELDS, key, strict=True)))
    device = torch.device(where)
    n_freqs = cfg.n_fft // 2 + 1
    fmax = cfg.fmax if cfg.fmax is not None else sr / 2
    fb = torchaudio.functional.melscale_fbanks(
        n_freqs, cfg.fmin, fmax, cfg.n_mels, sr, norm=mel_norm(cfg), mel_scale=cfg.mel_scale
    )
    return {
        "window": _WINDOWS[cfg.window](win_length(cfg), periodic=True, device=device),
        "fb": fb.T.contiguous().to(device),  # (n_mels, n_freqs)
        "freq": torch.linspace(0, sr / 2, n_freqs, device=device).reshape(-1, 1),
    }


@torch.inference_mode()
def torch_block(block: np.ndarray, sample_rate: int, cfg: AudioConfig) -> BlockFeatures:
    """Per-frame features of (S, (T - 1) * hop + n_fft) samples: T frames, no padding added here."""
    device = device_for(cfg)
    c = _constants(sample_rate, cfg, device)
    x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)).to(device)
    stft = torchaudio.functional.spectrogram(
        x,
        pad=0,
        window=c["window"],
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=win_length(cfg),
        power=None,
        normalized=False,
        center=False,
    )
    magnitude = stft.abs()
    del stft
    power = magnitude.square()
    mel = torch.matmul(c["fb"], power if cfg.power == 2 else magnitude)
    floor = AMIN if cfg.power == 2 else AMIN**0.5
    log_mel = (20.0 / cfg.power) * torch.log10(torch.clamp(mel, min=floor))
    centroid, bandwidth, rolloff = _stats(magnitude, c["freq"], cfg.rolloff_percent)
    return BlockFeatures(
        log_mel=_np(log_mel),
        centroid=_np(centroid),
        bandwidth=_np(bandwidth),
        rolloff=_np(rolloff),
        power=_np(power) if "power" in cfg.spectrogram else None,
        magnitude=_np(magnitude) if "magnitude" in cfg.spectrogram else None,
    )


def _stats(magnitude: torch.Tensor, freq: torch.Tensor, roll: float) -> tuple[torch.Tensor, ...]:
    """Per-frame centroid, bandwidth (p = 2) and roll-off in Hz, by librosa's definitions."""
    total = magnitude.sum(dim=-2, keepdim=True)
    tiny = torch.finfo(magnitude.dtype).tiny
    weights = magnitude / torch.where(total < tiny, torch.ones_like(total), total)
    centroid = (freq * weights).sum(dim=-2)
    deviation = (freq - centroid.unsqueeze(-2)).abs()
    bandwidth = (weights * deviation.square()).sum(dim=-2).sqrt()
    cumulative = magnitude.cumsum(dim=-2)
    reached = cumulative >= roll * cumulative[..., -1:, :]
    rolloff = freq.reshape(-1)[reached.to(torch.uint8).argmax(dim=-2)]
    return centroid, bandwidth, rolloff


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()
