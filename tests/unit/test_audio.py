"""Audio decoding/resampling from any container and per-window log-mel / MFCC against librosa."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest

from mmfs.config import AudioConfig
from mmfs.errors import ErrorCode, MediaDecodeError, MediaLimitExceeded
from mmfs.transforms.audio import DecodedAudio, decode_audio, window_bounds, window_features
from tests import media_factory as mf

CFG = AudioConfig()


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("rate", "channels", "subtype", "duration"),
    [
        (44100, 2, "PCM_16", 2.0),
        (8000, 1, "PCM_16", 1.0),
        (48000, 1, "FLOAT", 1.0),
        (22050, 6, "PCM_24", 0.7),
    ],
)
def test_resampled_length_and_pitch(
    tmp_path: Path, rate: int, channels: int, subtype: str, duration: float
) -> None:
    path = mf.write_wav(
        tmp_path / "a.wav", duration_s=duration, sample_rate=rate, channels=channels, subtype=subtype
    )
    audio = decode_audio(path, sample_rate=16000, max_duration_s=60)
    assert abs(len(audio.samples) - round(duration * 16000)) <= 2
    assert (audio.source_rate, audio.source_channels) == (rate, channels)
    assert audio.samples.dtype == np.float32 and np.abs(audio.samples).max() <= 1.0
    assert _peak_hz(audio.samples, 16000) == pytest.approx(440, abs=3)


def test_audio_track_of_a_video(tmp_path: Path) -> None:
    video = mf.write_video(tmp_path / "v.mp4", times_s=mf.constant_rate_times(40, 20), audio_tone_hz=440)
    audio = decode_audio(video, sample_rate=16000, max_duration_s=60)
    assert audio.duration_s == pytest.approx(2.0, abs=0.1)
    assert _peak_hz(audio.samples, 16000) == pytest.approx(440, abs=3)


def test_no_audio_and_garbage_are_decode_errors(tmp_path: Path) -> None:
    silent_video = mf.write_video(tmp_path / "v.mp4", times_s=mf.constant_rate_times(5, 10))
    garbage = tmp_path / "g.mp3"
    garbage.write_bytes(b"ID3" + bytes(range(256)) * 20)
    for path in (silent_video, garbage):
        with pytest.raises(MediaDecodeError) as info:
            decode_audio(path, sample_rate=16000, max_duration_s=60)
        assert info.value.code == ErrorCode.AUDIO_DECODE


def test_overlong_audio_is_refused(tmp_path: Path) -> None:
    path = mf.write_wav(tmp_path / "long.wav", duration_s=3.0)
    with pytest.raises(MediaLimitExceeded) as info:
        decode_audio(path, sample_rate=16000, max_duration_s=1.0)
    assert info.value.code == ErrorCode.LIMIT_DURATION


def test_windows_follow_the_grid() -> None:
    assert window_bounds(2.5, 1.0) == [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    samples = mf.sine(440, 2.5, 16000)
    windows = window_features(DecodedAudio(samples, 16000, 16000, 1, 2.5), segment_s=1.0, cfg=CFG)
    assert [(w.start_s, w.end_s) for w in windows] == window_bounds(2.5, 1.0)
    assert windows[0].log_mel.shape == (CFG.n_mels, 1 + 16000 // CFG.hop_length)
    assert windows[2].log_mel.shape[1] == 1 + 8000 // CFG.hop_length
    assert windows[0].rms == pytest.approx(0.5 / np.sqrt(2), abs=1e-3)


def test_mfcc_equals_librosa_directly() -> None:
    rng = np.random.default_rng(0)
    samples = (mf.sine(300, 2.0, 16000) + 0.1 * rng.standard_normal(32000)).astype(np.float32)
    cfg = AudioConfig(n_mels=40, n_mfcc=13, fmin=20.0, fmax=7600.0)
    windows = window_features(DecodedAudio(samples, 16000, 16000, 1, 2.0), segment_s=1.0, cfg=cfg)
    for w in windows:
        chunk = samples[round(w.start_s * 16000) : round(w.end_s * 16000)]
        expected = librosa.feature.mfcc(
            y=chunk,
            sr=16000,
            n_mfcc=13,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            n_mels=40,
            fmin=20.0,
            fmax=7600.0,
        )
        assert w.mfcc.shape == expected.shape
        np.testing.assert_allclose(w.mfcc, expected, atol=1e-3, rtol=1e-4)


def test_silence_is_finite_and_short_audio_is_padded() -> None:
    silence = DecodedAudio(np.zeros(16000, np.float32), 16000, 16000, 1, 1.0)
    (w,) = window_features(silence, segment_s=1.0, cfg=CFG)
    assert np.isfinite(w.log_mel).all() and np.isfinite(w.mfcc).all() and w.rms == 0.0
    tiny = DecodedAudio(mf.sine(440, 0.01, 16000), 16000, 16000, 1, 0.01)
    (t,) = window_features(tiny, segment_s=1.0, cfg=CFG)
    assert t.flags == ["padded"] and t.log_mel.shape[1] >= 1
