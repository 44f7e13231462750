"""librosa's `feature.melspectrogram` (Slaney mel, centred zero-padded STFT), in NumPy alone.

The encoders run in the run's own process, where librosa's spectral modules for one mel spectrogram
(the speaker encoder's input) cost ~80 MB of resident memory for the run's whole life. This is the
same arithmetic, operation for operation (scipy's periodic Hann window, librosa's frame layout,
NumPy's FFT, the same einsum), so its output equals librosa's exactly: `tests/unit/test_mel_lean.py`
compares them bit for bit.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["mel_filters", "melspectrogram"]


def hann(n: int) -> np.ndarray:
    """scipy.signal.get_window("hann", n, fftbins=True): the periodic Hann window, float64."""
    fac = np.linspace(-np.pi, np.pi, n + 1, dtype=np.float64)
    w = np.zeros(n + 1, dtype=np.float64)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


def _hz_to_mel(hz: float) -> float:
    """librosa.hz_to_mel (Slaney) of one frequency."""
    f_sp = 200.0 / 3
    mel = np.float64(hz) / f_sp
    if hz >= 1000.0:
        mel = 1000.0 / f_sp + np.log(np.float64(hz) / 1000.0) / (np.log(6.4) / 27.0)
    return float(mel)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """librosa.mel_to_hz (Slaney) of an array of mels."""
    f_sp = 200.0 / 3
    freqs = 0.0 + f_sp * mels
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = 1000.0 * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


@functools.cache
def mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels): Slaney scale and norm, float32."""
    weights = np.zeros((n_mels, int(1 + n_fft // 2)), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(float(sr) / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    weights.flags.writeable = False
    return weights


def melspectrogram(y: np.ndarray, sr: int, n_fft: int, hop_length: int, n_mels: int) -> np.ndarray:
    """librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
    power=2.0, pad_mode="constant") of a mono float32 signal: (n_mels, frames)."""
    if y.ndim != 1 or y.dtype != np.float32:
        raise ValueError(f"a mono float32 signal is expected, not {y.dtype} of shape {y.shape}")
    padded = np.pad(y, (n_fft // 2, n_fft // 2), mode="constant")
    n_frames = 1 + (len(padded) - n_fft) // hop_length
    if n_frames < 1:
        raise ValueError(f"a signal of {len(y)} samples is too short for n_fft={n_fft}")
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_fft, n_frames), strides=(padded.strides[0], hop_length * padded.strides[0])
    )
    window = hann(n_fft)[:, np.newaxis]
    stft = np.zeros((1 + n_fft // 2, n_frames), dtype=np.complex64, order="F")
    stft[:] = np.fft.rfft(window * frames, axis=-2)
    power = np.abs(stft) ** 2.0
    mel: np.ndarray = np.einsum("...ft,mf->...mt", power, mel_filters(sr, n_fft, n_mels), optimize=True)
    return mel
