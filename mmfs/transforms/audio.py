"""Audio: decode any container with PyAV to mono at one rate, then log-mel, MFCC and RMS per window.

Downmix and resampling run inside FFmpeg's resampler (libswresample, polyphase) frame by frame, so the
channel axis is never confused with time and memory grows only with the output. The downmix matrix is
normalised (`rematrix_maxval=1`): FFmpeg's float downmix is not, and would take full-scale stereo to
1.27 and 5.1 to over 3. Features follow the segment grid; the stored log-mel is absolute dB (ref 1.0,
no per-window top_db) so windows compare, and MFCC is derived from it exactly as librosa would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import librosa
import numpy as np

from mmfs.config import AudioConfig
from mmfs.errors import (
    EmptyFile,
    ErrorCode,
    MediaDecodeError,
    MediaError,
    MediaLimitExceeded,
    NonFiniteFeature,
)

AMIN = 1e-10  # power floor before the log: silence is finite, at 10 * log10(1e-10) = -100 dB
MFCC_TOP_DB = 80.0  # librosa.feature.mfcc(y=...) clamps 80 dB below each window's peak before the DCT
HEADER_SLACK = 2.0  # headers may only estimate duration (bitrate): reject early only when far past
_SWR_OPTIONS = {"rematrix_maxval": "1.0"}  # downmix gains sum to 1: stereo -> (L + R) / 2
# Silence pushed before draining the resampler, in source samples per unit of downsampling ratio: more
# than its filter holds back (64 failed at 192 kHz to 16 kHz, whose filter is 12 times longer).
TAIL_PAD_SAMPLES = 128


@dataclass
class DecodedAudio:
    """Mono float32 samples in [-1, 1] at `sample_rate`, and what the source was."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    duration_s: float


@dataclass
class AudioWindow:
    """Features of one window of the segment grid (one row of the `audio` table)."""

    window_index: int
    start_s: float
    end_s: float
    log_mel: np.ndarray  # (n_mels, n_frames) float32 dB
    mfcc: np.ndarray  # (n_mfcc, n_frames) float32
    rms: float
    flags: list[str] = field(default_factory=list)


class _MonoResampler:
    """Frames in, mono float32 chunks out; rebuilt when the stream changes rate or layout mid-way.

    libswresample holds back its filter's delay and drops it when drained: a source shorter than the
    filter came out empty (a 1 ms clip, or 14 samples at 7 Hz). So silence is pushed before each drain
    and the output trimmed to exactly round(source samples * rate / source rate).
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.source: tuple[int, int] | None = None  # (rate, channels) of the first frame
        self._key: tuple[str, str, int] | None = None
        self._resampler: av.AudioResampler | None = None
        self._last: av.AudioFrame | None = None
        self._fed = 0  # source samples given to the current resampler
        self._made = 0  # output samples it returned

    def push(self, frame: av.AudioFrame) -> list[np.ndarray]:
        """Resample one decoded frame (AAC and others may switch format between frames)."""
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        out: list[np.ndarray] = []
        if key != self._key:
            out = self.flush()
            self._resampler = av.AudioResampler(
                format="flt", layout="mono", rate=self.rate, options=_SWR_OPTIONS
            )
            self._key = key
            self.source = self.source or (frame.sample_rate, frame.layout.nb_channels)
        assert self._resampler is not None
        chunks = [_mono(f) for f in self._resampler.resample(frame)]
        self._last, self._fed, self._made = frame, self._fed + frame.samples, self._made + _count(chunks)
        return out + chunks

    def flush(self) -> list[np.ndarray]:
        """Drain the samples the resampler's filter still holds: exactly those the source is owed."""
        if self._resampler is None or self._last is None:
            return []
        owed = round(self._fed * self.rate / self._last.sample_rate) - self._made
        pad = TAIL_PAD_SAMPLES * max(1, math.ceil(self._last.sample_rate / self.rate))
        tail = [_mono(f) for f in self._resampler.resample(_silence_like(self._last, pad))]
        tail += [_mono(f) for f in self._resampler.resample(None)]
        self._resampler, self._key, self._last, self._fed, self._made = None, None, None, 0, 0
        return _first(tail, max(0, owed))


def _silence_like(frame: av.AudioFrame, samples: int) -> av.AudioFrame:
    """A silent frame in `frame`'s format, layout and rate, timed right after it."""
    silent = av.AudioFrame(format=frame.format.name, layout=frame.layout, samples=samples)
    for plane in silent.planes:
        plane.update(bytes(plane.buffer_size))
    silent.sample_rate = frame.sample_rate
    if frame.pts is not None and frame.time_base is not None:
        silent.time_base = frame.time_base
        silent.pts = frame.pts + round(frame.samples / frame.sample_rate / frame.time_base)
    return silent


def _count(chunks: list[np.ndarray]) -> int:
    return sum(len(c) for c in chunks)


def _first(chunks: list[np.ndarray], n: int) -> list[np.ndarray]:
    """The first n samples of a list of chunks, as chunks."""
    out, left = [], n
    for chunk in chunks:
        if left <= 0:
            break
        out.append(chunk[:left])
        left -= len(out[-1])
    return out


def _mono(frame: av.AudioFrame) -> np.ndarray:
    """A mono packed-float frame as a 1-D float32 array (its ndarray is (1, n))."""
    return np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1)


def decode_audio(
    path: str | Path, *, sample_rate: int, max_duration_s: float, stream_index: int | None = None
) -> DecodedAudio:
    """Decode an audio stream to mono float32 at `sample_rate`, stopping once past max_duration_s."""
    _check_readable(path)
    try:
        with av.open(str(path)) as container:
            stream = _audio_stream(container, stream_index, path)
            _check_declared_duration(container, stream, max_duration_s, path)
            resampler = _MonoResampler(sample_rate)
            chunks = _decode(container, stream, resampler, max_duration_s, path)
    except (av.FFmpegError, ValueError) as err:  # InvalidDataError is both
        raise MediaDecodeError(f"{path}: cannot decode audio: {err}", code=ErrorCode.AUDIO_DECODE) from err
    if not chunks or resampler.source is None:
        raise MediaError(f"{path}: audio stream has no samples", code=ErrorCode.TOO_SHORT)
    samples = np.clip(np.concatenate(chunks), -1.0, 1.0)  # float sources and resampling may overshoot
    rate, channels = resampler.source
    return DecodedAudio(samples, sample_rate, rate, channels, len(samples) / sample_rate)


def _check_readable(path: str | Path) -> None:
    """Missing, unreadable and zero-byte files fail with their own codes, before FFmpeg sees them."""
    try:
        with open(path, "rb") as handle:
            first = handle.read(1)
    except FileNotFoundError as err:
        raise MediaError(f"{path}: file not found", code=ErrorCode.NOT_FOUND) from err
    except OSError as err:
        raise MediaError(f"{path}: cannot read: {err.strerror}", code=ErrorCode.UNREADABLE) from err
    if not first:
        raise EmptyFile(f"{path}: file is empty")


def _audio_stream(container: Any, index: int | None, path: str | Path) -> Any:
    """The requested audio stream, else the first one; no audio stream is a decode error."""
    streams = list(container.streams.audio)
    if not streams:
        raise MediaDecodeError(f"{path}: no audio stream", code=ErrorCode.AUDIO_DECODE)
    if index is None:
        return streams[0]
    for stream in streams:
        if stream.index == index:
            return stream
    raise MediaDecodeError(f"{path}: stream {index} is not an audio stream", code=ErrorCode.AUDIO_DECODE)


def _check_declared_duration(container: Any, stream: Any, max_s: float, path: str | Path) -> None:
    """Refuse before decoding when the header's duration is far past the limit."""
    declared = None
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        declared = container.duration / av.time_base
    if declared is not None and declared > HEADER_SLACK * max_s:
        raise MediaLimitExceeded(
            f"{path}: audio declares {declared:.1f} s, over the {max_s:g} s limit",
            code=ErrorCode.LIMIT_DURATION,
        )


def _decode(
    container: Any, stream: Any, resampler: _MonoResampler, max_s: float, path: str | Path
) -> list[np.ndarray]:
    """Decode and resample frame by frame, raising as soon as the output passes the limit."""
    chunks: list[np.ndarray] = []
    total = 0
    limit = math.ceil(max_s * resampler.rate)
    frames = container.decode(stream)
    while True:
        frame = next(frames, None)
        out = resampler.push(frame) if frame is not None else resampler.flush()
        chunks.extend(out)
        total += sum(len(c) for c in out)
        if total > limit:
            raise MediaLimitExceeded(
                f"{path}: decoded audio passes the {max_s:g} s limit", code=ErrorCode.LIMIT_DURATION
            )
        if frame is None:
            return chunks


def window_bounds(duration_s: float, segment_s: float) -> list[tuple[float, float]]:
    """The segment grid over [0, duration): ceil(duration / segment_s) windows, the last one clipped."""
    if segment_s <= 0:
        raise ValueError(f"segment_s must be positive, got {segment_s}")
    if duration_s <= 0:
        return []
    n = max(1, math.ceil(round(duration_s / segment_s, 9)))  # 0.7 / 0.1 must give 7, not 8
    return [(k * segment_s, min((k + 1) * segment_s, duration_s)) for k in range(n)]


def log_mel(samples: np.ndarray, sample_rate: int, cfg: AudioConfig) -> np.ndarray:
    """Log-mel power spectrogram in absolute dB, (n_mels, 1 + len // hop); silence sits at -100 dB."""
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
    return librosa.power_to_db(power, ref=1.0, amin=AMIN, top_db=None).astype(np.float32)


def mfcc_from_log_mel(mel_db: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """MFCC of a stored log-mel: librosa's 80 dB clamp below the peak, then the orthonormal DCT-II."""
    clamped = np.maximum(mel_db, mel_db.max() - MFCC_TOP_DB)
    return librosa.feature.mfcc(S=clamped, n_mfcc=cfg.n_mfcc).astype(np.float32)


def mfcc(samples: np.ndarray, sample_rate: int, cfg: AudioConfig) -> np.ndarray:
    """MFCC equal to librosa.feature.mfcc(y=samples, ...) with the same mel parameters."""
    return mfcc_from_log_mel(log_mel(samples, sample_rate, cfg), cfg)


def window_features(audio: DecodedAudio, *, segment_s: float, cfg: AudioConfig) -> list[AudioWindow]:
    """Log-mel, MFCC and RMS per window of the segment grid; windows shorter than n_fft are padded."""
    sr = audio.sample_rate
    windows = []
    for k, (start, end) in enumerate(window_bounds(audio.duration_s, segment_s)):
        chunk = audio.samples[round(start * sr) : round(end * sr)]
        windows.append(_window(k, start, end, chunk, sr, cfg))
    return windows


def _window(k: int, start: float, end: float, chunk: np.ndarray, sr: int, cfg: AudioConfig) -> AudioWindow:
    """Features of one slice; non-finite input or output is a NonFiniteFeature, never a silent NaN."""
    where = f"audio window {k} ({start:.3f}-{end:.3f} s)"
    if not np.isfinite(chunk).all():
        raise NonFiniteFeature(f"{where}: samples are not finite")
    rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if len(chunk) else 0.0
    flags = []
    if len(chunk) < cfg.n_fft:  # librosa would warn and frame a too-short signal; pad and say so
        chunk = np.pad(chunk, (0, cfg.n_fft - len(chunk)))
        flags.append("padded")
    mel_db = log_mel(chunk, sr, cfg)
    coeffs = mfcc_from_log_mel(mel_db, cfg)
    if not (np.isfinite(mel_db).all() and np.isfinite(coeffs).all()):
        raise NonFiniteFeature(f"{where}: log-mel or MFCC is not finite")
    return AudioWindow(k, start, end, mel_db, coeffs, rms, flags)
