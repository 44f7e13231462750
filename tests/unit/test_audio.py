"""Audio decode (any container, any rate and channel count) and per-window log-mel / MFCC vs librosa."""

from __future__ import annotations

from pathlib import Path

import av
import librosa
import numpy as np
import pytest
import soundfile as sf

from mmfs.config import AudioConfig
from mmfs.errors import (
    EmptyFile,
    ErrorCode,
    MediaDecodeError,
    MediaError,
    MediaLimitExceeded,
    NonFiniteFeature,
)
from mmfs.transforms.audio.spec import window_frames
from mmfs.transforms.audio.windows import (
    DecodedAudio,
    decode_audio,
    log_mel,
    mfcc,
    window_bounds,
    window_features,
)
from tests import media_factory as mf

CFG = AudioConfig()
SR = 16000


class _NoSeek:
    """A write-only file: the Matroska muxer cannot go back to write a duration."""

    def __init__(self, handle: object) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        return self.handle.write(data)  # type: ignore[attr-defined]


def _write_encoded(path: Path, samples: np.ndarray, rate: int, codec: str, fmt: str, layout: str) -> Path:
    """Encode (channels, n) float samples with PyAV; a Matroska file written this way has no duration."""
    with open(path, "ab") as handle, av.open(_NoSeek(handle), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = layout
        for start in range(0, samples.shape[1], 1024):
            chunk = np.ascontiguousarray(samples[:, start : start + 1024], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _decode(path: Path, max_duration_s: float = 60.0) -> DecodedAudio:
    return decode_audio(path, sample_rate=SR, max_duration_s=max_duration_s)


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def _direct_mfcc(y: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    return librosa.feature.mfcc(
        y=y,
        sr=SR,
        n_mfcc=cfg.n_mfcc,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        center=True,
    )


@pytest.mark.parametrize(
    ("rate", "channels", "subtype", "duration"),
    [
        (44100, 2, "PCM_16", 2.0),
        (8000, 1, "PCM_16", 1.0),
        (48000, 1, "FLOAT", 1.0),
        (22050, 1, "PCM_24", 0.7),
        (48000, 6, "PCM_24", 0.5),
    ],
)
def test_wav_is_resampled_to_mono_with_exact_length_and_pitch(
    tmp_path: Path, rate: int, channels: int, subtype: str, duration: float
) -> None:
    path = mf.write_wav(
        tmp_path / "a.wav", duration_s=duration, sample_rate=rate, channels=channels, subtype=subtype
    )
    audio = _decode(path)
    assert audio.samples.ndim == 1 and audio.samples.dtype == np.float32
    assert abs(len(audio.samples) - round(duration * SR)) <= 2
    assert audio.duration_s == len(audio.samples) / SR and audio.sample_rate == SR
    assert (audio.source_rate, audio.source_channels) == (rate, channels)
    gains = [0.5 * (0.5 + 0.5 * c / channels) for c in range(channels)]  # media_factory's tone per channel
    peak = np.abs(audio.samples).max()
    assert peak == pytest.approx(np.mean(gains), abs=0.01)  # integer PCM scaled to [-1, 1]; channel mean
    assert _peak_hz(audio.samples, SR) == pytest.approx(440, abs=2)


def test_downmix_averages_channels_instead_of_summing(tmp_path: Path) -> None:
    tone = mf.sine(440, 1.0, 44100, amplitude=0.9)
    both = _decode(mf.write_wav(tmp_path / "b.wav", samples=np.stack([tone, tone], 1), sample_rate=44100))
    left = _decode(mf.write_wav(tmp_path / "l.wav", samples=np.stack([tone, 0 * tone], 1), sample_rate=44100))
    # FFmpeg's unnormalised float downmix would give 1.27 (clipped to 1.0) and 0.64
    assert np.abs(both.samples).max() == pytest.approx(0.9, abs=0.01)
    assert np.abs(left.samples).max() == pytest.approx(0.45, abs=0.01)


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("OGG", "OPUS"), ("MP3", None)]
)
def test_compressed_formats(tmp_path: Path, fmt: str, subtype: str | None) -> None:
    tone = mf.sine(440, 1.5, 48000)
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(str(path), np.stack([tone, tone], 1), 48000, format=fmt, subtype=subtype)
    audio = _decode(path)
    assert abs(len(audio.samples) - 24000) <= 2
    assert (audio.source_rate, audio.source_channels) == (48000, 2)
    assert _peak_hz(audio.samples, SR) == pytest.approx(440, abs=2)


def test_audio_track_of_a_video(tmp_path: Path) -> None:
    video = mf.write_video(tmp_path / "v.mp4", times_s=mf.constant_rate_times(40, 20), audio_tone_hz=440)
    audio = _decode(video)
    assert audio.duration_s == pytest.approx(2.0, abs=0.05)
    assert (audio.source_rate, audio.source_channels) == (44100, 1)
    assert _peak_hz(audio.samples, SR) == pytest.approx(440, abs=2)


def test_rate_and_layout_changing_mid_stream(tmp_path: Path) -> None:
    path = tmp_path / "mix.aac"  # two ADTS streams back to back: 44.1 kHz mono, then 22.05 kHz stereo
    _write_encoded(path, mf.sine(440, 1.0, 44100)[None, :], 44100, "aac", "adts", "mono")
    _write_encoded(path, np.tile(mf.sine(440, 1.0, 22050), (2, 1)), 22050, "aac", "adts", "stereo")
    audio = _decode(path)
    assert audio.duration_s == pytest.approx(2.0, abs=0.15)  # AAC adds priming and padding
    assert (audio.source_rate, audio.source_channels) == (44100, 1)
    assert _peak_hz(audio.samples, SR) == pytest.approx(440, abs=2)


def test_bad_inputs_raise_with_their_codes(tmp_path: Path) -> None:
    silent_video = mf.write_video(tmp_path / "v.mp4", times_s=mf.constant_rate_times(5, 10))
    garbage = tmp_path / "g.mp3"
    garbage.write_bytes(b"ID3" + bytes(range(256)) * 20)
    for path in (silent_video, garbage):
        with pytest.raises(MediaDecodeError) as info:
            _decode(path)
        assert info.value.code == ErrorCode.AUDIO_DECODE and path.name in str(info.value)
    with_audio = mf.write_video(tmp_path / "a.mp4", times_s=mf.constant_rate_times(5, 10), audio_tone_hz=440)
    with pytest.raises(MediaDecodeError) as info:
        decode_audio(with_audio, sample_rate=SR, max_duration_s=60, stream_index=0)  # the video stream
    assert info.value.code == ErrorCode.AUDIO_DECODE
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(EmptyFile):
        _decode(tmp_path / "empty.wav")
    with pytest.raises(MediaError) as missing:
        _decode(tmp_path / "missing.wav")
    assert missing.value.code == ErrorCode.NOT_FOUND


def test_duration_limit_from_header_and_while_decoding(tmp_path: Path) -> None:
    wav = mf.write_wav(tmp_path / "long.wav", duration_s=3.0)
    with pytest.raises(MediaLimitExceeded, match="declares") as info:
        _decode(wav, max_duration_s=1.0)
    assert info.value.code == ErrorCode.LIMIT_DURATION
    with pytest.raises(MediaLimitExceeded, match="decoded"):
        _decode(wav, max_duration_s=2.9)  # within the header slack: caught on the decoded samples
    assert len(_decode(wav, max_duration_s=3.0).samples) == 48000
    no_header = _write_encoded(
        tmp_path / "s.mka", mf.sine(440, 3.0, 16000)[None, :], 16000, "flac", "matroska", "mono"
    )
    with av.open(str(no_header)) as container:
        assert container.duration is None and container.streams.audio[0].duration is None
    with pytest.raises(MediaLimitExceeded, match="decoded") as info:
        _decode(no_header, max_duration_s=1.0)
    assert info.value.code == ErrorCode.LIMIT_DURATION
    assert len(_decode(no_header, max_duration_s=10).samples) == 48000


def test_window_grid() -> None:
    assert window_bounds(2.5, 1.0) == [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    assert window_bounds(2.0, 1.0) == [(0.0, 1.0), (1.0, 2.0)]
    assert len(window_bounds(0.7, 0.1)) == 7 and len(window_bounds(0.3, 0.1)) == 3
    assert window_bounds(0.2, 1.0) == [(0.0, 0.2)]
    assert window_bounds(0.0, 1.0) == []
    with pytest.raises(ValueError):
        window_bounds(1.0, 0.0)


def test_window_features_shapes_and_rms() -> None:
    samples = mf.sine(440, 2.5, SR)
    windows = window_features(DecodedAudio(samples, SR, SR, 1, 2.5), segment_s=1.0, cfg=CFG)
    assert [(w.window_index, w.start_s, w.end_s) for w in windows] == [
        (0, 0.0, 1.0),
        (1, 1.0, 2.0),
        (2, 2.0, 2.5),
    ]
    # frames centred in each window; the last also takes the frame on the signal's end: 251 in all
    for w, frames in zip(windows, (100, 100, 51), strict=True):
        assert w.log_mel.shape == (CFG.n_mels, frames) and w.log_mel.dtype == np.float32
        assert w.mfcc.shape == (CFG.n_mfcc, frames) and w.mfcc.dtype == np.float32
        assert w.rms == pytest.approx(0.5 / np.sqrt(2), abs=1e-3) and w.flags == []


@pytest.mark.filterwarnings("ignore:n_fft=400 is too large:UserWarning")  # librosa on the 240-sample signal
@pytest.mark.parametrize("signal", ["noisy", "pure_tone", "short"])
def test_mfcc_equals_a_direct_librosa_call(signal: str) -> None:
    rng = np.random.default_rng(0)
    cfg = AudioConfig(n_mels=40, n_mfcc=13, fmin=20.0, fmax=7600.0)
    if signal == "noisy":
        samples = (mf.sine(300, 2.0, SR) + 0.1 * rng.standard_normal(2 * SR)).astype(np.float32)
    elif signal == "pure_tone":  # > 80 dB of range: the case where librosa's top_db clamp matters
        samples = mf.sine(1000, 2.0, SR)
    else:
        samples = mf.sine(440, 0.015, SR)  # 240 samples < n_fft: the padded window
    duration = len(samples) / SR
    windows = window_features(DecodedAudio(samples, SR, SR, 1, duration), segment_s=1.0, cfg=cfg)
    whole = _direct_mfcc(samples, cfg)  # one analysis of the whole signal; each window is its frames
    np.testing.assert_allclose(mfcc(samples, SR, cfg), whole, atol=1e-4, rtol=0)
    for w in windows:
        first, last = window_frames(round(w.start_s * SR), round(w.end_s * SR), len(samples), cfg.hop_length)
        assert w.mfcc.shape == (cfg.n_mfcc, last - first)
        np.testing.assert_allclose(w.mfcc, whole[:, first:last], atol=1e-4, rtol=0)


def test_log_mel_is_absolute_db_comparable_across_windows() -> None:
    loud = mf.sine(1000, 1.0, SR, amplitude=0.5)
    quiet = mf.sine(1000, 1.0, SR, amplitude=0.05)
    loud_db, quiet_db = log_mel(loud, SR, CFG), log_mel(quiet, SR, CFG)
    peak = np.unravel_index(np.argmax(loud_db), loud_db.shape)
    assert float(loud_db[peak] - quiet_db[peak]) == pytest.approx(20.0, abs=0.01)  # 20*log10(10), no ref=max
    assert loud_db.max() - loud_db.min() > 80.0  # stored log-mel is not clamped per window
    assert loud_db.shape == (CFG.n_mels, 1 + SR // CFG.hop_length)


def test_silence_is_finite_at_the_floor_and_short_audio_is_padded() -> None:
    silence = DecodedAudio(np.zeros(SR, np.float32), SR, SR, 1, 1.0)
    (w,) = window_features(silence, segment_s=1.0, cfg=CFG)
    np.testing.assert_allclose(w.log_mel, -100.0, atol=1e-4)
    assert np.isfinite(w.mfcc).all() and w.rms == 0.0 and w.flags == []
    tiny = DecodedAudio(mf.sine(440, 0.01, SR), SR, SR, 1, 0.01)
    (t,) = window_features(tiny, segment_s=1.0, cfg=CFG)
    assert t.flags == ["padded"]
    assert t.log_mel.shape == (CFG.n_mels, 1 + 160 // CFG.hop_length)  # the signal's frames, never zero
    assert t.rms == pytest.approx(np.sqrt(np.mean(np.square(mf.sine(440, 0.01, SR), dtype=np.float64))))


def test_non_finite_samples_raise() -> None:
    samples = mf.sine(440, 1.0, SR)
    samples[100] = np.nan
    with pytest.raises(NonFiniteFeature) as info:
        window_features(DecodedAudio(samples, SR, SR, 1, 1.0), segment_s=1.0, cfg=CFG)
    assert info.value.code == ErrorCode.NONFINITE_FEATURE
