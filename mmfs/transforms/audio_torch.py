"""The torchaudio backend: the same features as `audio_features.librosa_features`, batched, CPU or CUDA.

torchaudio's own spectrogram, mel filterbank and DCT; deltas as a convolution with the
Savitzky-Golay coefficients librosa uses (edges repeated); statistics with librosa's formulas. torch is
imported only when this backend is chosen.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.signal
import torch
import torchaudio

from mmfs.config import AudioConfig
from mmfs.transforms.audio_features import AMIN, CENTER_PAD, SpectralFeatures, mel_norm, win_length

_KEY_FIELDS = ("n_fft", "win_length", "window", "fmin", "fmax", "n_mels", "mel_norm", "mel_scale", "n_mfcc")
_WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window}


def device_for(cfg: AudioConfig) -> torch.device:
    """`audio.device`: cuda when asked (or when auto and present), else the CPU."""
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _constants(sr: int, cfg: AudioConfig, device: torch.device) -> dict[str, Any]:
    """Window, mel filterbank, DCT matrix, delta kernels and bin frequencies, built once per config."""
    key = tuple(getattr(cfg, f) for f in _KEY_FIELDS)
    return _cached_constants(sr, key, cfg.delta_width, str(device))


@functools.lru_cache(maxsize=16)
def _cached_constants(sr: int, key: tuple[Any, ...], delta_width: int, where: str) -> dict[str, Any]:
    cfg = AudioConfig(sample_rate=sr, delta_width=delta_width, **dict(zip(_KEY_FIELDS, key, strict=True)))
    device = torch.device(where)
    n_freqs = cfg.n_fft // 2 + 1
    fmax = cfg.fmax if cfg.fmax is not None else sr / 2
    fb = torchaudio.functional.melscale_fbanks(
        n_freqs, cfg.fmin, fmax, cfg.n_mels, sr, norm=mel_norm(cfg), mel_scale=cfg.mel_scale
    )
    kernels = [
        torch.from_numpy(scipy.signal.savgol_coeffs(cfg.delta_width, order, deriv=order, use="dot").copy())
        for order in (1, 2)
    ]
    return {
        "window": _WINDOWS[cfg.window](win_length(cfg), periodic=True, device=device),
        "fb": fb.T.contiguous().to(device),  # (n_mels, n_freqs)
        "dct": torchaudio.functional.create_dct(cfg.n_mfcc, cfg.n_mels, "ortho").T.contiguous().to(device),
        "kernels": [k.to(torch.float32).reshape(1, 1, -1).to(device) for k in kernels],
        "freq": torch.linspace(0, sr / 2, n_freqs, device=device).reshape(-1, 1),
    }


@torch.inference_mode()
def torch_features(batch: np.ndarray, sample_rate: int, cfg: AudioConfig) -> SpectralFeatures:
    """Features of a (B, n) float32 batch with torchaudio."""
    device = device_for(cfg)
    c = _constants(sample_rate, cfg, device)
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
    stft = torchaudio.functional.spectrogram(
        x,
        pad=0,
        window=c["window"],
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=win_length(cfg),
        power=None,
        normalized=False,
        center=True,
        pad_mode=CENTER_PAD,
    )
    magnitude = stft.abs()
    power = magnitude.square()
    mel = torch.matmul(c["fb"], power if cfg.power == 2 else magnitude)
    floor = AMIN if cfg.power == 2 else AMIN**0.5
    log_mel = (20.0 / cfg.power) * torch.log10(torch.clamp(mel, min=floor))
    clamped = log_mel
    if cfg.mfcc_top_db is not None:
        peak = log_mel.amax(dim=(-2, -1), keepdim=True)
        clamped = torch.maximum(log_mel, peak - cfg.mfcc_top_db)
    mfcc = torch.matmul(c["dct"], clamped)
    delta = delta2 = None
    if cfg.deltas:
        delta, delta2 = (_savgol(mfcc, k) for k in c["kernels"])
    centroid, bandwidth, rolloff = _stats(magnitude, c["freq"], cfg.rolloff_percent)
    return SpectralFeatures(
        log_mel=_np(log_mel),
        mfcc=_np(mfcc),
        delta=None if delta is None else _np(delta),
        delta2=None if delta2 is None else _np(delta2),
        power=_np(power) if "power" in cfg.spectrogram else None,
        magnitude=_np(magnitude) if "magnitude" in cfg.spectrogram else None,
        centroid=_np(centroid.mean(dim=-1)),
        bandwidth=_np(bandwidth.mean(dim=-1)),
        rolloff=_np(rolloff.mean(dim=-1)),
    )


def _savgol(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Savitzky-Golay derivative along frames with repeated edges: librosa.feature.delta(mode='nearest')."""
    b, k, t = x.shape
    half = kernel.shape[-1] // 2
    flat = x.reshape(b * k, 1, t)
    if half >= t:  # replicate padding wants fewer pad frames than frames: repeat the edges by hand
        flat = torch.cat([flat[..., :1].expand(-1, -1, half), flat, flat[..., -1:].expand(-1, -1, half)], -1)
    else:
        flat = torch.nn.functional.pad(flat, (half, half), mode="replicate")
    return torch.nn.functional.conv1d(flat, kernel).reshape(b, k, t)


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
