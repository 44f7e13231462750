"""Audio features per window of the segment grid: log-mel, MFCC (+ deltas), spectra and statistics.

Decoding lives in `audio.decode`; the spectral analysis runs once over the whole signal
(`audio.frames`, streamed in blocks through the librosa or torchaudio backend), and each window of the
segment grid takes its own frames (`audio.spec.window_frames`) into an `AudioWindow` (one `audio` table
row): no window is analysed alone, so nothing jumps at its edges, and padding happens only at the
signal's two ends. RMS and zero-crossing rate are of the window's own samples. A window shorter than
one FFT frame is flagged `padded` (its frames reach past it). With `audio.channels: keep`, the mixdown
and every channel are analysed side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mmfs.config import AudioConfig
from mmfs.errors import NonFiniteFeature
from mmfs.transforms.audio.decode import DecodedAudio, audio_blocks, decode_audio
from mmfs.transforms.audio.frames import FrameFeatures, frame_features
from mmfs.transforms.audio.librosa_backend import clamp_top_db, time_stats
from mmfs.transforms.audio.spec import AMIN, window_frames
from mmfs.transforms.audio.window_types import AudioWindow, ChannelFeatures

__all__ = [
    "AMIN",
    "AudioWindow",
    "ChannelFeatures",
    "DecodedAudio",
    "audio_blocks",
    "decode_audio",
    "log_mel",
    "mfcc",
    "mfcc_from_log_mel",
    "window_bounds",
    "window_features",
]


def window_bounds(duration_s: float, segment_s: float) -> list[tuple[float, float]]:
    """The segment grid over [0, duration): ceil(duration / segment_s) windows, the last one clipped."""
    if segment_s <= 0:
        raise ValueError(f"segment_s must be positive, got {segment_s}")
    if duration_s <= 0:
        return []
    n = max(1, math.ceil(round(duration_s / segment_s, 9)))  # 0.7 / 0.1 must give 7, not 8
    return [(k * segment_s, min((k + 1) * segment_s, duration_s)) for k in range(n)]


def log_mel(samples: np.ndarray, sample_rate: int, cfg: AudioConfig) -> np.ndarray:
    """Log-mel of one signal in absolute dB, (n_mels, 1 + len // hop); silence sits at -100 dB."""
    return frame_features(samples[None, :], sample_rate, cfg).log_mel[0]


def mfcc_from_log_mel(mel_db: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """MFCC of a log-mel: librosa's clamp below this log-mel's own peak, then the orthonormal DCT-II."""
    import librosa

    clamped = clamp_top_db(mel_db, cfg.mfcc_top_db)
    return librosa.feature.mfcc(S=clamped, n_mfcc=cfg.n_mfcc).astype(np.float32)


def mfcc(samples: np.ndarray, sample_rate: int, cfg: AudioConfig) -> np.ndarray:
    """MFCC equal to librosa.feature.mfcc(y=samples, ...) with the same mel parameters."""
    return frame_features(samples[None, :], sample_rate, cfg).mfcc[0]


@dataclass
class _Slice:
    index: int
    start_s: float
    end_s: float
    lo: int
    hi: int


def window_features(
    audio: DecodedAudio,
    *,
    segment_s: float,
    cfg: AudioConfig,
    grid_duration_s: float | None = None,
    max_windows: int | None = None,
) -> list[AudioWindow]:
    """Features per window of the segment grid over `grid_duration_s` (the item's timeline; default:
    the audio's own duration), cut from one analysis of the whole signal. Windows the audio does not
    reach are left out; audio past the grid is not a window. Windows shorter than n_fft are flagged."""
    sr = audio.sample_rate
    signals = _signals(audio)
    n = signals.shape[1]
    bounds = window_bounds(audio.duration_s if grid_duration_s is None else grid_duration_s, segment_s)
    slices = [
        _Slice(k, s, e, round(s * sr), min(round(e * sr), n))
        for k, (s, e) in enumerate(bounds[:max_windows])
        if round(s * sr) < n
    ]
    if not slices:
        return []
    _check_finite_samples(signals, slices)
    used = signals[:, : max(sl.hi for sl in slices)]  # audio past the last window shapes none of them
    feats = frame_features(used, sr, cfg)
    finite = feats.finite_frames()
    windows = []
    for sl in slices:
        first, last = window_frames(sl.lo, sl.hi, used.shape[1], cfg.hop_length)
        if not finite[first:last].all():
            raise NonFiniteFeature(f"{_where(sl)}: features are not finite")
        windows.append(_window(sl, feats, slice(first, last), signals[:, sl.lo : sl.hi], cfg))
    return windows


def _signals(audio: DecodedAudio) -> np.ndarray:
    """(S, n): the mixdown, then each kept channel."""
    if audio.channel_samples is None:
        return audio.samples[None, :]
    return np.concatenate([audio.samples[None, :], audio.channel_samples], axis=0)


def _check_finite_samples(signals: np.ndarray, slices: list[_Slice]) -> None:
    """Non-finite input is a NonFiniteFeature naming its window, never a silent NaN feature."""
    if np.isfinite(signals).all():
        return
    for sl in slices:
        if not np.isfinite(signals[:, sl.lo : sl.hi]).all():
            raise NonFiniteFeature(f"{_where(sl)}: samples are not finite")


def _where(sl: _Slice) -> str:
    return f"audio window {sl.index} ({sl.start_s:.3f}-{sl.end_s:.3f} s)"


def _window(sl: _Slice, f: FrameFeatures, t: slice, chunk: np.ndarray, cfg: AudioConfig) -> AudioWindow:
    """Window `sl` from frames `t` of the whole analysis: the mixdown (row 0), then its channels."""
    rms, zcr = time_stats(chunk)
    centroid, bandwidth, rolloff = (
        a[:, t].mean(axis=-1, dtype=np.float64) for a in (f.centroid, f.bandwidth, f.rolloff)
    )
    channels = None
    if chunk.shape[0] > 1:
        spectral = np.stack([centroid[1:], bandwidth[1:], rolloff[1:]], axis=1)
        stats = np.concatenate([np.stack([rms[1:], zcr[1:]], axis=1), spectral], axis=1).astype(np.float32)
        channels = ChannelFeatures(f.log_mel[1:, :, t], f.mfcc[1:, :, t], stats)
    return AudioWindow(
        window_index=sl.index,
        start_s=sl.start_s,
        end_s=sl.end_s,
        log_mel=f.log_mel[0, :, t],
        mfcc=f.mfcc[0, :, t],
        rms=float(rms[0]),
        flags=["padded"] if sl.hi - sl.lo < cfg.n_fft else [],
        zcr=float(zcr[0]),
        centroid_hz=float(np.float32(centroid[0])),
        bandwidth_hz=float(np.float32(bandwidth[0])),
        rolloff_hz=float(np.float32(rolloff[0])),
        mfcc_delta=None if f.delta is None else f.delta[0, :, t],
        mfcc_delta2=None if f.delta2 is None else f.delta2[0, :, t],
        power=None if f.power is None else f.power[0, :, t],
        magnitude=None if f.magnitude is None else f.magnitude[0, :, t],
        channels=channels,
    )
