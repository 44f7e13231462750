"""Decoding every container at every rate to an exact length; channels kept apart or averaged; flat memory.

Each fixture is written here with soundfile or PyAV (0.4 s, tiny). The expected length is computed from
what FFmpeg decodes of the source (lossy codecs add priming and padding), counted independently with
PyAV: round(source samples x target rate / source rate).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from mmfs.transforms.audio.windows import audio_blocks, decode_audio
from tests import media_factory as mf

RATES = (8000, 22050, 44100, 48000, 96000, 192000)
DURATION = 0.4
# container -> the source rates its codec can carry
SUPPORTED = {
    "wav": RATES,
    "flac": RATES,
    "ogg_vorbis": RATES,
    "mp3": (8000, 22050, 44100, 48000),
    "opus": (8000, 48000),
    "m4a_aac": (8000, 22050, 44100, 48000, 96000),
    "mp4_h264_aac": (8000, 44100, 48000, 96000),
    "mkv_h264_flac": RATES,
    "webm_vp8_opus": (8000, 48000),
    "avi_mjpeg_pcm": RATES,
}
CASES = [(c, r) for c, rates in SUPPORTED.items() for r in rates]
_SOUNDFILE = {
    "wav": ("WAV", "PCM_16", "wav"),
    "flac": ("FLAC", "PCM_16", "flac"),
    "ogg_vorbis": ("OGG", "VORBIS", "ogg"),
    "mp3": ("MP3", None, "mp3"),
    "opus": ("OGG", "OPUS", "opus"),
}
# container -> (suffix, muxer, video codec or None, audio codec)
_PYAV = {
    "m4a_aac": ("m4a", "ipod", None, "aac"),
    "mp4_h264_aac": ("mp4", "mp4", "libx264", "aac"),
    "mkv_h264_flac": ("mkv", "matroska", "libx264", "flac"),
    "webm_vp8_opus": ("webm", "webm", "libvpx", "libopus"),
    "avi_mjpeg_pcm": ("avi", "avi", "mjpeg", "pcm_s16le"),
}


def stereo(rate: int, duration: float = DURATION) -> np.ndarray:
    """(2, n): 440 Hz on the left, 1000 Hz on the right, so the channels can be told apart."""
    return np.stack([mf.sine(440, duration, rate, 0.5), mf.sine(1000, duration, rate, 0.3)])


def write_fixture(tmp_path: Path, container: str, rate: int, samples: np.ndarray) -> Path:
    """(channels, n) float samples in `container` at `rate`."""
    if container in _SOUNDFILE:
        fmt, subtype, suffix = _SOUNDFILE[container]
        path = tmp_path / f"{container}_{rate}.{suffix}"
        sf.write(str(path), samples.T, rate, format=fmt, subtype=subtype)
        return path
    suffix, muxer, video_codec, audio_codec = _PYAV[container]
    path = tmp_path / f"{container}_{rate}.{suffix}"
    layout = {1: "mono", 2: "stereo"}[samples.shape[0]]
    with av.open(str(path), "w", format=muxer) as out:
        if video_codec is not None:
            video = out.add_stream(video_codec, rate=10)
            video.width, video.height = 32, 32
            video.pix_fmt = "yuvj420p" if video_codec == "mjpeg" else "yuv420p"
        audio = out.add_stream(audio_codec, rate=rate)
        audio.layout = layout
        fmt = audio.codec_context.codec.audio_formats[0].name
        if video_codec is not None:
            for i in range(round(DURATION * 10)):
                frame = av.VideoFrame.from_ndarray(
                    np.full((32, 32, 3), 40 * i % 256, np.uint8), format="rgb24"
                )
                frame.pts = i
                for packet in video.encode(frame):
                    out.mux(packet)
            for packet in video.encode():
                out.mux(packet)
        _encode(out, audio, samples, rate, layout, fmt)
    return path


def _encode(
    out: av.container.OutputContainer, stream: object, samples: np.ndarray, rate: int, layout: str, fmt: str
) -> None:
    """Feed (channels, n) float samples to an audio encoder in 960-sample frames, in its sample format."""
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
    for start in range(0, samples.shape[1], 960):
        chunk = np.ascontiguousarray(samples[:, start : start + 960], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, start
        for converted in resampler.resample(frame):
            for packet in stream.encode(converted):  # type: ignore[attr-defined]
                out.mux(packet)
    for packet in stream.encode():  # type: ignore[attr-defined]
        out.mux(packet)


def source_samples(path: Path) -> tuple[int, int]:
    """(samples, rate) FFmpeg decodes from the file's audio stream, counted frame by frame."""
    with av.open(str(path)) as container:
        frames = list(container.decode(container.streams.audio[0]))
    return sum(f.samples for f in frames), frames[0].sample_rate


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(("container", "rate"), CASES, ids=[f"{c}-{r}" for c, r in CASES])
def test_every_container_and_rate_resamples_to_the_exact_length(
    tmp_path: Path, container: str, rate: int
) -> None:
    path = write_fixture(tmp_path, container, rate, stereo(rate))
    n_source, source_rate = source_samples(path)
    assert abs(n_source / source_rate - DURATION) < 0.15  # sanity (AAC at 8 kHz adds 0.11 s of priming)
    for target in (16000, 44100):
        audio = decode_audio(path, sample_rate=target, max_duration_s=60)
        assert audio.samples.shape == (round(n_source * target / source_rate),)
        assert audio.duration_s == len(audio.samples) / target
        assert (audio.source_rate, audio.source_channels) == (source_rate, 2)
    kept = decode_audio(path, sample_rate=16000, max_duration_s=60, channels="keep")
    assert kept.channel_samples is not None
    assert kept.channel_samples.shape == (2, round(n_source * 16000 / source_rate))


@pytest.mark.parametrize("container", ["wav", "flac", "mp4_h264_aac"])
def test_stereo_channels_are_kept_apart_or_averaged(tmp_path: Path, container: str) -> None:
    path = write_fixture(tmp_path, container, 44100, stereo(44100, 1.0))
    kept = decode_audio(path, sample_rate=16000, max_duration_s=60, channels="keep")
    down = decode_audio(path, sample_rate=16000, max_duration_s=60, channels="downmix")
    assert kept.channel_samples is not None and down.channel_samples is None
    left, right = kept.channel_samples
    assert _peak_hz(left, 16000) == pytest.approx(440, abs=3)
    assert _peak_hz(right, 16000) == pytest.approx(1000, abs=3)
    middle = slice(1600, 14000)  # away from codec priming and the resampler's edges
    assert np.sqrt(np.mean(left[middle] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.03)
    assert np.sqrt(np.mean(right[middle] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.03)
    # downmix (before resampling) is the channel mean: equal to the mean of the kept channels
    np.testing.assert_allclose(down.samples, (left + right) / 2, atol=1e-4)
    np.testing.assert_allclose(kept.samples, (left + right) / 2, atol=1e-6)


def test_six_channels_keep_their_order_and_axis(tmp_path: Path) -> None:
    """(channels, samples): per-channel gains come back in order; the time axis is the long one."""
    path = mf.write_wav(tmp_path / "six.wav", duration_s=0.5, sample_rate=48000, channels=6, subtype="PCM_24")
    kept = decode_audio(path, sample_rate=16000, max_duration_s=60, channels="keep")
    assert kept.channel_samples is not None and kept.channel_samples.shape == (6, 8000)
    rms = np.sqrt(np.mean(kept.channel_samples[:, 400:-400] ** 2, axis=1))
    gains = np.array([0.5 * (0.5 + 0.5 * c / 6) for c in range(6)])  # media_factory's tone per channel
    np.testing.assert_allclose(rms, gains / np.sqrt(2), rtol=0.01)


@pytest.mark.parametrize(
    ("source", "target"), [(8000, 48000), (44100, 22050), (192000, 8000), (16000, 16000)]
)
def test_resampling_is_polyphase_and_keeps_the_pitch(tmp_path: Path, source: int, target: int) -> None:
    path = mf.write_wav(tmp_path / "t.wav", duration_s=1.0, sample_rate=source, subtype="FLOAT", freq_hz=1500)
    audio = decode_audio(path, sample_rate=target, max_duration_s=60)
    assert len(audio.samples) == target
    assert _peak_hz(audio.samples, target) == pytest.approx(1500, abs=2)
    mid = audio.samples[target // 10 : -target // 10]
    assert np.sqrt(np.mean(mid**2)) == pytest.approx(0.25 / np.sqrt(2), rel=0.005)  # mono tone at 0.25


def test_blocks_decode_with_memory_flat_in_duration(tmp_path: Path) -> None:
    """A 60 s 48 kHz file streams through in blocks: the peak traced memory is a fraction of the output."""
    rng = np.random.default_rng(0)
    path = tmp_path / "long.flac"
    sf.write(str(path), (0.1 * rng.standard_normal(60 * 48000)).astype(np.float32), 48000, subtype="PCM_16")
    tracemalloc.start()
    try:
        total = 0
        for block in audio_blocks(path, 16000, max_duration_s=120):
            assert block.ndim == 2 and block.shape[0] == 1
            total += block.shape[1]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 60 * 16000
    assert peak < 0.25 * total * 4  # the whole output is 3.84 MB; the source at 48 kHz is three times that


def test_pyav_still_encodes_vp8_once_the_frame_readers_are_imported() -> None:
    """decord bundles an older libavcodec/libvpx; mmfs imports PyAV first so PyAV keeps its own."""
    import subprocess
    import sys

    code = (
        "import mmfs.transforms.video.frames, mmfs.transforms.video.readers, av, io\n"
        "out = av.open(io.BytesIO(), 'w', format='webm')\n"
        "s = out.add_stream('libvpx', rate=10); s.width = s.height = 32; s.pix_fmt = 'yuv420p'\n"
        "s.codec_context.open(); print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
