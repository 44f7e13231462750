"""Spectral features of a batch of equal-length windows: the librosa backend, and what both backends share.

One STFT per window feeds everything: the power or magnitude spectrogram, the log-mel (absolute dB,
ref 1.0, floor at `AMIN`: silence is finite at -100 dB), MFCC (librosa's 80 dB clamp below each
window's peak, then the orthonormal DCT-II), deltas (Savitzky-Golay slope, edges repeated) and the
spectral centroid, bandwidth and roll-off averaged over the window's frames. The torchaudio backend
(`audio_torch`) computes the same quantities, batched, on the CPU or CUDA.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import librosa
import numpy as np
import scipy.sparse

from mmfs.config import AudioConfig

AMIN = 1e-10  # power floor before the log: 10 * log10(1e-10) = -100 dB
CENTER_PAD: Final = "constant"  # frames centred on their time, the signal zero-padded at both ends


@dataclass
class SpectralFeatures:
    """Features of B equal-length windows, batch axis first; frame axis last."""

    log_mel: np.ndarray  # (B, n_mels, T) dB
    mfcc: np.ndarray  # (B, n_mfcc, T)
    delta: np.ndarray | None  # (B, n_mfcc, T), when cfg.deltas
    delta2: np.ndarray | None
    power: np.ndarray | None  # (B, 1 + n_fft // 2, T), when stored
    magnitude: np.ndarray | None
    centroid: np.ndarray  # (B,) Hz, mean over frames
    bandwidth: np.ndarray  # (B,) Hz
    rolloff: np.ndarray  # (B,) Hz

    def is_finite(self) -> bool:
        """Whether every array holds finite values only."""
        arrays = [self.log_mel, self.mfcc, self.delta, self.delta2, self.centroid, self.bandwidth]
        return all(np.isfinite(a).all() for a in [*arrays, self.rolloff] if a is not None)


Backend = Callable[[np.ndarray, int, AudioConfig], SpectralFeatures]


def compute(batch: np.ndarray, sample_rate: int, cfg: AudioConfig) -> SpectralFeatures:
    """Features of a (B, n) float32 batch with the configured backend."""
    if cfg.backend == "torchaudio":
        from mmfs.transforms.audio_torch import torch_features

        return torch_features(batch, sample_rate, cfg)
    return librosa_features(batch, sample_rate, cfg)


def win_length(cfg: AudioConfig) -> int:
    """The analysis window's length in samples (zero-padded to n_fft when shorter)."""
    return cfg.win_length or cfg.n_fft


def mel_norm(cfg: AudioConfig) -> str | None:
    """The mel filterbank normalisation as both libraries name it."""
    return None if cfg.mel_norm == "none" else cfg.mel_norm


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


def librosa_features(batch: np.ndarray, sample_rate: int, cfg: AudioConfig) -> SpectralFeatures:
    """The features with librosa and NumPy (CPU), one STFT for the whole batch."""
    stft = librosa.stft(
        batch,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=win_length(cfg),
        window=cfg.window,
        center=True,
        pad_mode=CENTER_PAD,
    )
    magnitude = np.abs(stft)
    power = np.square(magnitude)
    spec = power if cfg.power == 2 else magnitude
    mel = mel_product(mel_filters(sample_rate, cfg), spec)
    log_mel: np.ndarray
    if cfg.power == 2:
        log_mel = np.asarray(librosa.power_to_db(mel, ref=1.0, amin=AMIN, top_db=None))
    else:
        log_mel = np.asarray(librosa.amplitude_to_db(mel, ref=1.0, amin=AMIN**0.5, top_db=None))
    mfcc = librosa.feature.mfcc(S=clamp_top_db(log_mel, cfg.mfcc_top_db), n_mfcc=cfg.n_mfcc)
    delta = delta2 = None
    if cfg.deltas:
        delta = librosa.feature.delta(mfcc, width=cfg.delta_width, order=1, mode="nearest")
        delta2 = librosa.feature.delta(mfcc, width=cfg.delta_width, order=2, mode="nearest")
    freq = librosa.fft_frequencies(sr=sample_rate, n_fft=cfg.n_fft).astype(np.float32)
    centroid, bandwidth, rolloff = spectral_stats(magnitude, freq, cfg.rolloff_percent)
    return SpectralFeatures(
        log_mel=log_mel.astype(np.float32, copy=False),
        mfcc=mfcc.astype(np.float32, copy=False),
        delta=None if delta is None else delta.astype(np.float32, copy=False),
        delta2=None if delta2 is None else delta2.astype(np.float32, copy=False),
        power=power if "power" in cfg.spectrogram else None,
        magnitude=magnitude if "magnitude" in cfg.spectrogram else None,
        centroid=_frame_mean(centroid),
        bandwidth=_frame_mean(bandwidth),
        rolloff=_frame_mean(rolloff),
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
    """Each window's log-mel clamped `top_db` below its own peak (librosa.feature.mfcc(y=...) does)."""
    if top_db is None:
        return mel_db
    peak = mel_db.max(axis=(-2, -1), keepdims=True)
    return np.maximum(mel_db, peak - top_db)


def _frame_mean(per_frame: np.ndarray) -> np.ndarray:
    """(B, T) frame statistics to their (B,) mean over frames, float32."""
    return per_frame.mean(axis=-1, dtype=np.float64).astype(np.float32)


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


def feature_params(cfg: AudioConfig, segment_s: float) -> dict[str, Any]:
    """Everything that shapes the stored features: recorded in the audio table's schema metadata."""
    return {
        "backend": cfg.backend,
        "sample_rate": cfg.sample_rate,
        "channels": cfg.channels,
        "window_s": segment_s,
        "n_fft": cfg.n_fft,
        "hop": cfg.hop_length,
        "win_length": win_length(cfg),
        "window": cfg.window,
        "center": True,
        "pad_mode": CENTER_PAD,
        "power": cfg.power,
        "n_mels": cfg.n_mels,
        "fmin": cfg.fmin,
        "fmax": cfg.fmax if cfg.fmax is not None else cfg.sample_rate / 2,
        "mel_scale": cfg.mel_scale,
        "norm": mel_norm(cfg),
        "log": f"10*log10(max(mel^(2/power), {AMIN}))",
        "n_mfcc": cfg.n_mfcc,
        "mfcc_top_db": cfg.mfcc_top_db,
        "dct": "type 2, ortho",
        "deltas": cfg.deltas,
        "delta_width": cfg.delta_width,
        "delta_mode": "savgol, edges repeated (librosa mode=nearest)",
        "spectrogram": list(cfg.spectrogram),
        "rolloff_percent": cfg.rolloff_percent,
        "stats": list(STATS_ORDER),
    }


STATS_ORDER = ("rms", "zcr", "centroid_hz", "bandwidth_hz", "rolloff_hz")  # stats_channels' columns
