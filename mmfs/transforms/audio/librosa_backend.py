"""The librosa backend: per-frame spectral features of a block of frames, and the maths both backends share.

One STFT per block (center=False: `audio.frames` hands over the samples under exactly these frames, the
signal's two ends zero-padded) feeds the power or magnitude spectrogram, the log-mel (absolute dB, ref
1.0, floor at `AMIN`: silence is finite at -100 dB) and the spectral centroid, bandwidth and roll-off
per frame. MFCC and deltas are taken over the whole signal's frames in `audio.frames`. The torchaudio
backend (`audio.torch_backend`) computes the same block, batched, on the CPU or CUDA.
"""

from __future__ import annotations

import functools
from typing import Any

import librosa
import numpy as np
import scipy.sparse

from mmfs.config import AudioConfig
from mmfs.transforms.audio.spec import (
    AMIN,
    STATS_ORDER,
    BlockFeatures,
    feature_params,
    mel_norm,
    win_length,
)

__all__ = ["AMIN", "STATS_ORDER", "feature_params", "librosa_block", "mel_filters", "time_stats"]


@functools.lru_cache(maxsize=8)
def _mel_filters(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, htk: bool, norm: Any
) -> Any:
    dense = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm, dtype=np.float32
    )
    return scipy.sparse.csr_array(dense)


def mel_filters(sample_rate: int, cfg: AudioConfig) -> Any:
    """librosa's mel filterbank (n_mels, 1 + n_fft // 2) for this config, as a CSR matrix (cached)."""
    htk = cfg.mel_scale == "htk"
    return _mel_filters(sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax, htk, mel_norm(cfg))


def librosa_block(block: np.ndarray, sample_rate: int, cfg: AudioConfig) -> BlockFeatures:
    """Per-frame features of (S, (T - 1) * hop + n_fft) samples: T frames, no padding added here."""
    stft = librosa.stft(
        block,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=win_length(cfg),
        window=cfg.window,
        center=False,
    )
    magnitude = np.abs(stft)
    del stft
    power = np.square(magnitude)
    mel = mel_product(mel_filters(sample_rate, cfg), power if cfg.power == 2 else magnitude)
    log_mel = (20.0 / cfg.power) * np.log10(np.maximum(mel, AMIN if cfg.power == 2 else AMIN**0.5))
    freq = librosa.fft_frequencies(sr=sample_rate, n_fft=cfg.n_fft).astype(np.float32)
    centroid, bandwidth, rolloff = spectral_stats(magnitude, freq, cfg.rolloff_percent)
    return BlockFeatures(
        log_mel=log_mel.astype(np.float32, copy=False),
        centroid=centroid.astype(np.float32, copy=False),
        bandwidth=bandwidth.astype(np.float32, copy=False),
        rolloff=rolloff.astype(np.float32, copy=False),
        power=power if "power" in cfg.spectrogram else None,
        magnitude=magnitude if "magnitude" in cfg.spectrogram else None,
    )


def mel_product(filters: Any, spec: np.ndarray) -> np.ndarray:
    """(n_mels, F) sparse filters applied to (B, F, T) spectra, as one sparse product over all frames.

    Each mel filter spans a few bins: the sparse product does ~1/30 of a dense one's work, in one
    thread. A dense product per window (`np.matmul` broadcasting, `einsum`) is a BLAS call per window,
    each waking the BLAS thread pool: several times slower on a loaded machine.
    """
    b, f, t = spec.shape
    frames = np.ascontiguousarray(spec.transpose(1, 0, 2)).reshape(f, b * t)
    mel = np.asarray(filters @ frames, dtype=np.float32)
    return np.ascontiguousarray(mel.reshape(-1, b, t).transpose(1, 0, 2))


def spectral_stats(magnitude: np.ndarray, freq: np.ndarray, roll: float) -> tuple[np.ndarray, ...]:
    """Per-frame centroid, bandwidth (p = 2) and roll-off in Hz of (B, F, T) magnitudes, each (B, T).

    librosa.feature.spectral_centroid / _bandwidth / _rolloff's definitions (equal to them in the
    tests), with the frame normalisation done once instead of once per statistic.
    """
    total = magnitude.sum(axis=-2, keepdims=True)
    weights = magnitude / np.where(total < np.finfo(magnitude.dtype).tiny, 1.0, total).astype(magnitude.dtype)
    centroid = np.einsum("f,bft->bt", freq, weights)  # no BLAS call per window
    deviation = freq[:, None] - centroid[:, None, :]
    bandwidth = np.sqrt(np.sum(weights * np.square(deviation), axis=-2))
    cumulative = np.cumsum(magnitude, axis=-2)
    reached = cumulative >= roll * cumulative[..., -1:, :]
    rolloff = freq[np.argmax(reached, axis=-2)]
    return centroid, bandwidth, rolloff


def clamp_top_db(mel_db: np.ndarray, top_db: float | None) -> np.ndarray:
    """A log-mel clamped `top_db` below its own peak, as librosa.feature.mfcc(y=...) does."""
    if top_db is None:
        return mel_db
    peak = mel_db.max(axis=(-2, -1), keepdims=True)
    return np.maximum(mel_db, peak - top_db)


def time_stats(signals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMS and zero-crossing rate of (S, n) signals over their whole length (0 for empty ones).

    The crossing rate is the fraction of adjacent sample pairs whose sign differs (zero counts as
    positive, as in librosa), so it does not depend on the STFT framing.
    """
    n = signals.shape[-1]
    if n == 0:
        zeros = np.zeros(signals.shape[0], np.float32)
        return zeros, zeros.copy()
    rms = np.sqrt(np.mean(np.square(signals, dtype=np.float64), axis=-1)).astype(np.float32)
    if n < 2:
        return rms, np.zeros(signals.shape[0], np.float32)
    negative = np.signbit(signals) & (signals != 0)
    zcr = np.mean(negative[:, 1:] != negative[:, :-1], axis=-1).astype(np.float32)
    return rms, zcr
