"""The speaker encoder's mel spectrogram in NumPy equals librosa's bit for bit (so its vectors do)."""

from __future__ import annotations

import librosa  # a declared dependency: the reference
import numpy as np
import pytest
import scipy.signal

from mmfs.encoders.audio_resemblyzer import HOP, N_FFT, N_MELS, SAMPLE_RATE
from mmfs.transforms.audio.mel_lean import hann, mel_filters, melspectrogram


def test_window_and_filters_equal_scipy_and_librosa() -> None:
    assert np.array_equal(hann(N_FFT), scipy.signal.get_window("hann", N_FFT, fftbins=True))
    expected = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    got = mel_filters(SAMPLE_RATE, N_FFT, N_MELS)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


@pytest.mark.parametrize("n_samples", [N_FFT, N_FFT + 1, 16_000, 25_600, 96_017])
def test_melspectrogram_equals_librosa(n_samples: int) -> None:
    rng = np.random.default_rng(n_samples)
    wav = (rng.standard_normal(n_samples) * 0.1).astype(np.float32)
    wav[: n_samples // 4] = 0.0  # silence too: zero frames
    expected = librosa.feature.melspectrogram(
        y=wav, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, power=2.0, pad_mode="constant"
    )
    got = melspectrogram(wav, SAMPLE_RATE, N_FFT, HOP, N_MELS)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(got, expected)


def test_other_input_is_refused() -> None:
    with pytest.raises(ValueError, match="mono float32"):
        melspectrogram(np.zeros(800, np.float64), SAMPLE_RATE, N_FFT, HOP, N_MELS)
