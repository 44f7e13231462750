"""Spectral features: the librosa backend equals librosa's own calls, torchaudio agrees with it in float32,
silence stays finite, short audio is padded and flagged, and kept channels are features per channel."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal

from mmfs.config import AudioConfig, config_from_dict
from mmfs.errors import ConfigError
from mmfs.transforms.audio.windows import DecodedAudio, window_features
from tests import media_factory as mf

SR = 16000
# Stated agreement of the torchaudio backend with the librosa backend, float32, matched parameters
# (docs/audio.md): log-mel in dB, MFCC and deltas absolute; spectra relative to the window's peak;
# statistics in Hz (roll-off: a frame may land one bin over, 40 Hz at n_fft 400, averaged over frames).
TOL_DB, TOL_MFCC, TOL_SPEC, TOL_HZ, TOL_ROLLOFF_HZ = 0.01, 0.005, 1e-5, 0.05, 1.0
CONFIGS = {
    "defaults": {},
    "htk_unnormalised_magnitude": {
        "mel_scale": "htk",
        "mel_norm": "none",
        "power": 1,
        "window": "hamming",
        "win_length": 320,
        "fmin": 30.0,
        "fmax": 7000.0,
        "n_mels": 40,
        "n_mfcc": 13,
        "spectrogram": ["power", "magnitude"],
    },
    "long_fft_no_clamp": {
        "n_fft": 1024,
        "hop_length": 256,
        "n_mels": 96,
        "mfcc_top_db": None,
        "delta_width": 5,
    },
}


def chirp_and_noise(duration: float = 2.3, seed: int = 0) -> np.ndarray:
    """A 100 Hz to 6 kHz chirp in noise, with a silent second and a 10 ms tail: a real-ish signal."""
    t = np.arange(round(duration * SR)) / SR
    rng = np.random.default_rng(seed)
    y = 0.5 * scipy.signal.chirp(t, 100, duration, 6000) + 0.05 * rng.standard_normal(len(t))
    y[SR : 2 * SR] = 0.0
    return y.astype(np.float32)


def _features(samples: np.ndarray, cfg: AudioConfig, segment_s: float = 1.0) -> list:
    return window_features(DecodedAudio(samples, SR, SR, 1, len(samples) / SR), segment_s=segment_s, cfg=cfg)


@pytest.mark.parametrize("name", CONFIGS)
def test_torchaudio_agrees_with_librosa_in_float32(name: str) -> None:
    y = chirp_and_noise(2.3)
    ref = _features(y, AudioConfig(backend="librosa", **CONFIGS[name]))
    got = _features(y, AudioConfig(backend="torchaudio", **CONFIGS[name]))
    assert [w.flags for w in ref] == [[], [], []] and len(got) == len(ref)
    for a, b in zip(ref, got, strict=True):
        assert b.log_mel.dtype == np.float32 and b.log_mel.shape == a.log_mel.shape
        np.testing.assert_allclose(b.log_mel, a.log_mel, atol=TOL_DB, rtol=0)
        np.testing.assert_allclose(b.mfcc, a.mfcc, atol=TOL_MFCC, rtol=0)
        np.testing.assert_allclose(b.mfcc_delta, a.mfcc_delta, atol=TOL_MFCC, rtol=0)
        np.testing.assert_allclose(b.mfcc_delta2, a.mfcc_delta2, atol=TOL_MFCC, rtol=0)
        for spec in ("power", "magnitude"):
            if getattr(a, spec) is not None:
                peak = float(getattr(a, spec).max()) or 1.0
                np.testing.assert_allclose(getattr(b, spec) / peak, getattr(a, spec) / peak, atol=TOL_SPEC)
        assert b.centroid_hz == pytest.approx(a.centroid_hz, abs=TOL_HZ)
        assert b.bandwidth_hz == pytest.approx(a.bandwidth_hz, abs=TOL_HZ)
        assert b.rolloff_hz == pytest.approx(a.rolloff_hz, abs=TOL_ROLLOFF_HZ)
        assert (b.rms, b.zcr) == (a.rms, a.zcr)  # time-domain, computed once for both backends


def test_librosa_backend_equals_librosa_called_directly() -> None:
    y = chirp_and_noise(2.0, seed=1)[:SR]  # the first window: chirp in noise
    cfg = AudioConfig(spectrogram=["power", "magnitude"])
    (w,) = _features(y, cfg)
    kw = {"n_fft": cfg.n_fft, "hop_length": cfg.hop_length}
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_mels=cfg.n_mels, **kw)
    np.testing.assert_allclose(
        w.log_mel, librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None), atol=1e-4
    )
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=cfg.n_mfcc, n_mels=cfg.n_mels, **kw)
    np.testing.assert_allclose(w.mfcc, mfcc, atol=1e-3)
    np.testing.assert_allclose(
        w.mfcc_delta, librosa.feature.delta(w.mfcc, width=9, mode="nearest"), atol=1e-5
    )
    np.testing.assert_allclose(
        w.mfcc_delta2, librosa.feature.delta(w.mfcc, order=2, mode="nearest"), atol=1e-5
    )
    magnitude = np.abs(librosa.stft(y, **kw))
    np.testing.assert_allclose(w.magnitude, magnitude, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.power, magnitude**2, rtol=1e-4, atol=1e-6)
    assert w.centroid_hz == pytest.approx(
        librosa.feature.spectral_centroid(y=y, sr=SR, **kw).mean(), rel=1e-5
    )
    assert w.bandwidth_hz == pytest.approx(
        librosa.feature.spectral_bandwidth(y=y, sr=SR, **kw).mean(), rel=1e-5
    )
    assert w.rolloff_hz == pytest.approx(librosa.feature.spectral_rolloff(y=y, sr=SR, **kw).mean(), rel=1e-5)
    assert w.rms == pytest.approx(np.sqrt(np.mean(y.astype(np.float64) ** 2)), rel=1e-6)
    assert w.zcr == pytest.approx(np.mean(np.signbit(y[1:]) != np.signbit(y[:-1])), abs=1e-6)


@pytest.mark.parametrize("backend", ["librosa", "torchaudio"])
def test_silence_is_finite_and_short_audio_is_padded_and_flagged(backend: str) -> None:
    cfg = AudioConfig(backend=backend)
    (silent,) = _features(np.zeros(SR, np.float32), cfg)
    np.testing.assert_allclose(silent.log_mel, -100.0, atol=1e-4)  # 10 log10(1e-10): the floor, not log(0)
    for values in (silent.mfcc, silent.mfcc_delta, silent.mfcc_delta2):
        assert np.isfinite(values).all()
    assert (silent.rms, silent.zcr, silent.centroid_hz, silent.bandwidth_hz, silent.rolloff_hz) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert silent.flags == []
    for n in (1, 37, cfg.n_fft - 1):  # shorter than one FFT window
        (short,) = _features(mf.sine(440, n / SR, SR), cfg)
        assert short.flags == ["padded"]
        assert short.log_mel.shape == (cfg.n_mels, 1 + n // cfg.hop_length)  # the signal's frames, never 0
        assert short.mfcc_delta2 is not None and short.mfcc_delta2.shape[1] == short.log_mel.shape[1]
        assert np.isfinite(short.log_mel).all() and np.isfinite(short.mfcc_delta2).all()
    (exact,) = _features(mf.sine(440, cfg.n_fft / SR, SR), cfg)
    assert exact.flags == []


def test_kept_channels_are_features_per_channel_beside_the_mixdown() -> None:
    left, right = mf.sine(300, 1.5, SR, 0.5), mf.sine(3000, 1.5, SR, 0.2)
    channels = np.stack([left, right])
    mono = channels.mean(axis=0)
    kept = window_features(DecodedAudio(mono, SR, SR, 2, 1.5, channels), segment_s=1.0, cfg=AudioConfig())
    down = window_features(DecodedAudio(mono, SR, SR, 2, 1.5), segment_s=1.0, cfg=AudioConfig())
    for k, d in zip(kept, down, strict=True):
        np.testing.assert_array_equal(k.log_mel, d.log_mel)  # the stored 2-D columns are the mixdown's
        assert d.channels is None and k.channels is not None
        assert k.channels.log_mel.shape == (2, 64, d.log_mel.shape[1])
        assert k.channels.mfcc.shape == (2, 20, d.log_mel.shape[1]) and k.channels.stats.shape == (2, 5)
        rms, _, centroid, _, _ = k.channels.stats.T
        np.testing.assert_allclose(rms, [0.5 / np.sqrt(2), 0.2 / np.sqrt(2)], rtol=1e-3)
        assert centroid[0] < 1000 < centroid[1]
        np.testing.assert_array_equal(
            k.channels.log_mel[0],
            window_features(DecodedAudio(left, SR, SR, 1, 1.5), segment_s=1.0, cfg=AudioConfig())[
                k.window_index
            ].log_mel,
        )
    assert kept[0].columns()["n_channels"] == 2 and down[0].columns()["log_mel_channels"] is None


def test_windows_follow_the_item_grid_not_the_audio_length() -> None:
    y = mf.sine(440, 2.2, SR)
    audio = DecodedAudio(y, SR, SR, 1, 2.2)
    shorter = window_features(audio, segment_s=1.0, cfg=AudioConfig(), grid_duration_s=2.0)
    assert [(w.start_s, w.end_s) for w in shorter] == [(0.0, 1.0), (1.0, 2.0)]  # audio past the grid: no row
    longer = window_features(audio, segment_s=1.0, cfg=AudioConfig(), grid_duration_s=3.5)
    assert [(w.start_s, w.end_s) for w in longer] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]  # grid ends kept
    assert longer[2].log_mel.shape[1] == 1 + round(0.2 * SR) // 160  # only the samples that exist
    assert len(window_features(audio, segment_s=0.5, cfg=AudioConfig(), max_windows=3)) == 3


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        ({"delta_width": 8}, "delta_width must be odd"),
        ({"fmax": 9000.0}, "Nyquist"),
        ({"win_length": 512}, "longer than n_fft"),
        ({"channels": "stereo"}, "audio.channels"),
        ({"backend": "essentia"}, "audio.backend"),
    ],
)
def test_bad_audio_options_fail_at_load(audio: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"audio": audio})


@pytest.mark.gpu
def test_torchaudio_on_cuda_agrees_with_librosa() -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    y = chirp_and_noise(2.3)
    ref = _features(y, AudioConfig(backend="librosa"))
    got = _features(y, AudioConfig(backend="torchaudio", device="cuda"))
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(b.log_mel, a.log_mel, atol=TOL_DB, rtol=0)
        np.testing.assert_allclose(b.mfcc, a.mfcc, atol=TOL_MFCC, rtol=0)
        np.testing.assert_allclose(b.mfcc_delta2, a.mfcc_delta2, atol=TOL_MFCC, rtol=0)
        assert b.centroid_hz == pytest.approx(a.centroid_hz, abs=TOL_HZ)
