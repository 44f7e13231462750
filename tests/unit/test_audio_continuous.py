"""Window features are cuts of one continuous analysis: equal to librosa's whole-signal features at the
same frame indices (both backends), steady across window edges, and flat in memory on an hour of audio."""

from __future__ import annotations

import tracemalloc

import librosa
import numpy as np
import pytest
import scipy.signal

from mmfs.config import AudioConfig
from mmfs.transforms.audio.spec import window_frames
from mmfs.transforms.audio.windows import AudioWindow, DecodedAudio, window_features
from tests import media_factory as mf

SR = 16000
# the torchaudio backend's stated agreement with librosa (tests/unit/test_audio_features.py)
TOL = {"librosa": (1e-3, 1e-3, 1e-3), "torchaudio": (0.01, 0.005, 0.005)}  # dB, MFCC, deltas


def _signal(seconds: float = 3.7) -> np.ndarray:
    """A chirp in noise with a silent stretch: energy changes that a per-window analysis would cut."""
    t = np.arange(round(seconds * SR)) / SR
    y = 0.5 * scipy.signal.chirp(t, 100, seconds, 6000) + 0.05 * np.random.default_rng(0).standard_normal(
        len(t)
    )
    y[round(1.2 * SR) : round(1.9 * SR)] = 0.0
    return y.astype(np.float32)


def _windows(y: np.ndarray, cfg: AudioConfig, segment_s: float) -> list[AudioWindow]:
    return window_features(DecodedAudio(y, SR, SR, 1, len(y) / SR), segment_s=segment_s, cfg=cfg)


def _frames(w: AudioWindow, n: int, hop: int) -> slice:
    return slice(*window_frames(round(w.start_s * SR), round(w.end_s * SR), n, hop))


@pytest.mark.parametrize("segment_s", [1.0, 0.333])  # window edges on a hop, and between hops
@pytest.mark.parametrize("backend", ["librosa", "torchaudio"])
def test_every_window_is_its_frames_of_librosas_whole_signal_features(backend: str, segment_s: float) -> None:
    y = _signal()
    cfg = AudioConfig(backend=backend, spectrogram=["magnitude"])
    kw = {"sr": SR, "n_fft": cfg.n_fft, "hop_length": cfg.hop_length}
    mel = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, n_mels=cfg.n_mels, **kw), amin=1e-10, top_db=None
    )
    mfcc = librosa.feature.mfcc(y=y, n_mfcc=cfg.n_mfcc, n_mels=cfg.n_mels, **kw)
    delta = librosa.feature.delta(mfcc, width=cfg.delta_width, mode="nearest")
    delta2 = librosa.feature.delta(mfcc, width=cfg.delta_width, order=2, mode="nearest")
    magnitude = np.abs(librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length))
    centroid = librosa.feature.spectral_centroid(y=y, **kw)[0]
    rolloff = librosa.feature.spectral_rolloff(y=y, **kw)[0]
    windows = _windows(y, cfg, segment_s)
    assert len(windows) == int(np.ceil(round(len(y) / SR / segment_s, 9)))
    tol_db, tol_mfcc, tol_delta = TOL[backend]
    covered: list[int] = []
    for w in windows:
        t = _frames(w, len(y), cfg.hop_length)
        covered += range(t.start, t.stop)
        np.testing.assert_allclose(w.log_mel, mel[:, t], atol=tol_db, rtol=0)
        np.testing.assert_allclose(w.mfcc, mfcc[:, t], atol=tol_mfcc, rtol=0)
        np.testing.assert_allclose(w.mfcc_delta, delta[:, t], atol=tol_delta, rtol=0)
        np.testing.assert_allclose(w.mfcc_delta2, delta2[:, t], atol=tol_delta, rtol=0)
        np.testing.assert_allclose(w.magnitude, magnitude[:, t], atol=1e-4 * magnitude.max(), rtol=0)
        assert w.centroid_hz == pytest.approx(centroid[t].mean(), abs=0.05)
        assert w.rolloff_hz == pytest.approx(rolloff[t].mean(), abs=1.0)
    assert covered == list(range(mel.shape[1]))  # the windows partition the signal's frames, in order
    np.testing.assert_allclose(np.concatenate([w.log_mel for w in windows], axis=1), mel, atol=tol_db, rtol=0)


@pytest.mark.parametrize("backend", ["librosa", "torchaudio"])
def test_a_steady_tone_has_the_same_log_mel_in_every_window_edges_included(backend: str) -> None:
    """No bright line at window boundaries: only the signal's own two ends see padding."""
    cfg = AudioConfig(backend=backend)
    y = mf.sine(440, 5.0, SR, 0.5)
    windows = _windows(y, cfg, 1.0)
    reach = cfg.n_fft // 2 // cfg.hop_length + 1  # frames whose analysis window passes the signal's ends
    inner = np.concatenate([w.log_mel for w in windows], axis=1)[:, reach:-reach]
    steady = np.median(inner, axis=1, keepdims=True)
    assert np.abs(inner - steady).max() < 0.05  # dB, at every frame, first and last of each window too
    for w in windows[1:-1]:
        np.testing.assert_allclose(w.log_mel[:, [0, -1]], steady.repeat(2, 1), atol=0.05, rtol=0)


@pytest.mark.slow
def test_memory_stays_flat_on_an_hour_of_audio() -> None:
    """The feature step holds the output and one block's spectrum: a whole-signal STFT of an hour would
    be 580 MB more; measured overhead (peak less what the windows keep) stays under 64 MB."""
    cfg = AudioConfig()
    _windows(mf.sine(440, 2.0, SR), cfg, 1.0)  # imports and caches before tracing
    n = 3600 * SR
    y = np.empty(n, np.float32)
    minute = mf.sine(440, 60.0, SR, 0.3)
    for i in range(0, n, len(minute)):
        y[i : i + len(minute)] = minute
    tracemalloc.start()
    try:
        windows = _windows(y, cfg, 1.0)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(windows) == 3600
    whole_stft = (1 + cfg.n_fft // 2) * (1 + n // cfg.hop_length) * 8  # complex64
    assert peak - kept < 64e6 < whole_stft / 8
    assert kept < y.nbytes  # the output (log-mel, MFCC, deltas per frame) is smaller than the input


def test_the_analysis_is_part_of_the_audio_feature_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores written with per-window analysis recompute their audio rows: the analysis id is hashed."""
    from mmfs.config import PipelineConfig
    from mmfs.stages import versions as rows
    from mmfs.transforms.audio.spec import ANALYSIS, feature_params

    cfg = PipelineConfig()
    now = rows.feature_versions(cfg)
    monkeypatch.setattr(rows, "AUDIO_ANALYSIS", "per-window")
    before = rows.feature_versions(cfg)
    assert now["audio"] != before["audio"] and now["segments"] != before["segments"]
    assert now["frames"] == before["frames"] and now["text"] == before["text"]
    assert feature_params(cfg.audio, 1.0)["analysis"] == ANALYSIS
