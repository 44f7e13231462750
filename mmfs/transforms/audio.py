"""Audio: decode any container with PyAV, downmix and resample, then log-mel and MFCC per window.

Downmixing and resampling happen inside FFmpeg's resampler (libswresample, polyphase) frame by frame,
so the channel axis is never confused with time and memory stays flat in duration. Features are
computed per window of the segment grid with librosa; MFCC is derived from the stored log-mel, so the
two always agree, and equals `librosa.feature.mfcc` on the same samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.config import AudioConfig
from mmfs.errors import ErrorCode, MediaDecodeError, MediaLimitExceeded, NonFiniteFeature

AMIN = 1e-10  # power floor before the log: silence stays finite (10 * log10(1e-10) = -100 dB)
TOP_DB = 80.0  # dynamic range kept below each window's peak, as librosa's mfcc does


@dataclass
class DecodedAudio:
    """Mono float32 samples in [-1, 1] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    duration_s: float


@dataclass
class AudioWindow:
    """Features of one window of the segment grid."""

    window_index: int
    start_s: float
    end_s: float
    log_mel: np.ndarray  # (n_mels, n_frames) dB
    mfcc: np.ndarray  # (n_mfcc, n_frames)
    rms: float
    flags: list[str] = field(default_factory=list)


def decode_audio(
    path: str | Path, *, sample_rate: int, max_duration_s: float, stream_index: int | None = None
) -> DecodedAudio:
    """Decode an audio stream to mono float32 at `sample_rate`, refusing overlong inputs early."""
    import av

    name = Path(path).name
    try:
        with av.open(str(path)) as container:
            stream = _audio_stream(container, stream_index, name)
            rate, channels = (
                int(stream.codec_context.sample_rate),
                int(stream.codec_context.channels),
            )
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks = _decode_chunks(container, stream, resampler, sample_rate, max_duration_s, name)
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaDecodeError(f"{name}: cannot decode audio ({err})", code=ErrorCode.AUDIO_DECODE) from err
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if samples.size == 0:
        raise MediaDecodeError(f"{name}: audio stream has no samples", code=ErrorCode.AUDIO_DECODE)
    samples = np.clip(samples, -1.0, 1.0)
    return DecodedAudio(samples, sample_rate, rate, channels, len(samples) / sample_rate)


def _audio_stream(container: Any, index: int | None, name: str) -> Any:
    streams = list(container.streams.audio)
    if not streams:
        raise MediaDecodeError(f"{name}: no audio stream", code=ErrorCode.AUDIO_DECODE)
    if index is not None:
        for stream in streams:
            if stream.index == index:
                return stream
    return min(streams, key=lambda s: s.index)


def _decode_chunks(
    container: Any, stream: Any, resampler: Any, rate: int, max_s: float, name: str
) -> list[np.ndarray]:
    chunks: list[np.ndarray] = []
    total = 0
    limit = int(max_s * rate)
    for frame in container.decode(stream):
        frame.pts = None  # let the resampler make its own timeline (robust to odd timestamps)
        for out in resampler.resample(frame):
            chunk = out.to_ndarray().reshape(-1).astype(np.float32)
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise MediaLimitExceeded(
                f"{name}: audio is longer than the limit of {max_s:.0f} s",
                code=ErrorCode.LIMIT_DURATION,
            )
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1).astype(np.float32))
    return chunks


def window_bounds(duration_s: float, segment_s: float) -> list[tuple[float, float]]:
    """ceil(duration / segment_s) windows [k*s, min((k+1)*s, duration)); at least one."""
    n = max(1, math.ceil(round(duration_s / segment_s, 9)))
    return [(k * segment_s, min((k + 1) * segment_s, duration_s)) for k in range(n)]


def log_mel(samples: np.ndarray, sample_rate: int, cfg: AudioConfig) -> np.ndarray:
    """Log-mel spectrogram in dB, (n_mels, 1 + len // hop), finite for silence."""
    import librosa

    power = librosa.feature.melspectrogram(
        y=samples,
        sr=sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        center=True,
        power=2.0,
    )
    return librosa.power_to_db(power, ref=1.0, amin=AMIN, top_db=TOP_DB).astype(np.float32)


def mfcc(samples: np.ndarray, sample_rate: int, cfg: AudioConfig) -> np.ndarray:
    """MFCC from the log-mel above: identical to librosa.feature.mfcc(y=...) with the same parameters."""
    return mfcc_from_log_mel(log_mel(samples, sample_rate, cfg), cfg)


def mfcc_from_log_mel(mel_db: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """DCT-II (orthonormal) of a log-mel spectrogram, as librosa does."""
    import librosa

    return librosa.feature.mfcc(S=mel_db, n_mfcc=cfg.n_mfcc).astype(np.float32)


def window_features(audio: DecodedAudio, *, segment_s: float, cfg: AudioConfig) -> list[AudioWindow]:
    """Log-mel, MFCC and RMS for each window of the segment grid; short windows padded and flagged."""
    out = []
    sr = audio.sample_rate
    for k, (start, end) in enumerate(window_bounds(audio.duration_s, segment_s)):
        chunk = audio.samples[round(start * sr) : round(end * sr)]
        flags = []
        if len(chunk) < cfg.n_fft:
            chunk = np.pad(chunk, (0, cfg.n_fft - len(chunk)))
            flags.append("padded")
        mel_db = log_mel(chunk, sr, cfg)
        coeffs = mfcc_from_log_mel(mel_db, cfg)
        if not (np.isfinite(mel_db).all() and np.isfinite(coeffs).all()):
            raise NonFiniteFeature(f"non-finite audio features in window {k}")
        rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if len(chunk) else 0.0
        out.append(AudioWindow(k, start, end, mel_db, coeffs, rms, flags))
    return out
