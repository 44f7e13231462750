"""The bad-input corpus: one generated file per case of RELIABILITY.md's catalogue, with its expected outcome.

Every file is made here from numpy, PyAV, soundfile, Pillow or raw bytes (never the ffmpeg CLI), so the
corpus is the same on every machine. `build_corpus(root)` writes them all into one folder and returns the
manifest (`Case` per file) that `tests/reliability/test_bad_inputs.py` checks a real pipeline run against.

Outcomes follow the catalogue: **Q** quarantined (a `quarantine` row with the code and stage, a `failed`
media row or none), **D** degraded (kept, with a quality flag or a failed modality), **N** normal, **dup**
the same bytes as another case (one media row, two uris), **skip** not an input at all.

The catalogue's codes that mmfs names differently: `UNEXPECTED_FORMAT` is `UNSUPPORTED_KIND` (bytes of a
kind mmfs does not handle), `MISSING_MODALITY` does not apply (no config requires a modality), and
`PARTIAL_DOWNLOAD` / `UNSAFE_ARCHIVE` / `URI_REJECTED` belong to the source layer (archives are never
opened; a tar given as input is `UNSUPPORTED_KIND`).

Cases that cannot be made on this machine (the made stand-in, if any, after the reason):

| #     | case                           | why not here                                                   |
|-------|--------------------------------|----------------------------------------------------------------|
| 5     | PTS still out of order after   | FFmpeg's decoders reorder frames; AVI with B-frames is made    |
|       | decoding                       |                                                                |
| 22    | decoder hang (silent FIFO,     | mmfs decodes in-process and has no per-item timeout to test;   |
|       | sleeping stub decoder)         | a FIFO is made and must be skipped, never opened               |
| 24/25 | tar member and URI traversal,  | source-layer cases, in tests/reliability/test_security.py; a   |
|       | refused schemes                | tar is made only to check it is refused as an input            |
| 27    | partial download               | mmfs reads local files; there is no download to cut short      |
| 28    | negative container duration   | no PyAV muxer writes one; missing durations are made           |
| 30    | encoder NaN/Inf (fp16)         | needs a half-precision GPU encoder; empty and constant inputs  |
|       |                                | (whitespace text, silence, black frames) are made              |
| -     | unreadable file (EACCES)       | the tests run as root here, and root reads mode-000 files      |
| -     | over 8 channels or 192 kHz     | `LimitsConfig` has no such limits yet; 16 channels and 7 Hz    |
|       | refused                        | are made and must decode                                       |
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import soundfile as sf

from mmfs.errors import ErrorCode
from tests import media_factory as mf

Outcome = Literal["Q", "D", "N", "dup", "skip"]
Builder = Callable[[Path], None]

W, H = 64, 48  # frame size of the generated clips
_RNG_SEED = 20261124


@dataclass(frozen=True)
class Case:
    """One corpus file: the catalogue row it covers, and what the pipeline must do with it."""

    name: str  # file name in the corpus folder (spaces, quotes and unicode are part of some cases)
    item: int  # RELIABILITY.md catalogue row (0: general input handling)
    outcome: Outcome
    build: Builder = field(repr=False, compare=False)
    code: ErrorCode | None = None  # Q and D: the quarantine row's error code
    stage: str | None = None  # Q and D: the quarantine row's stage
    flags: tuple[str, ...] = ()  # quality flags the media row must carry (a trailing '=' matches a prefix)
    same_as: str | None = None  # dup: the case whose bytes these are
    extra_files: tuple[str, ...] = ()  # sidecars written beside it (not items themselves)


# ---------------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------------


class _Unseekable:
    """A write-only file: muxers cannot go back to write a duration or an index."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        """Pass bytes through."""
        return int(self.handle.write(data))


def seed_of(path: Path) -> int:
    """A texture seed from a file name, so no two generated clips share their bytes by accident."""
    return zlib.crc32(path.name.encode()) % 10_000


def _frames(n: int, width: int, height: int, *, seed: int = 0, still: bool = False) -> list[np.ndarray]:
    """n RGB frames: a texture moving 2 px right per frame (flow has something to find), or black."""
    if still:
        return [np.zeros((height, width, 3), np.uint8) for _ in range(n)]
    paint = mf.translating_painter(width, height, 2.0, 0.0, seed=seed)
    return [paint(i, 0.0) for i in range(n)]


def write_clip(
    target: Path | Any,
    *,
    times_s: list[float],
    width: int = W,
    height: int = H,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fmt: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    ccw_rotation: int = 0,
    still: bool = False,
    tone_hz: float | None = None,
    tb: Fraction = Fraction(1, 90000),
    seed: int = 0,
) -> None:
    """Encode one video stream (exact PTS in seconds), optionally with a mono AAC tone, to a path or file."""
    dest = str(target) if isinstance(target, Path) else target
    with av.open(dest, mode="w", format=fmt, options=container_options or {}) as out:
        stream: Any = out.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = tb
        stream.options = options if options is not None else {"bf": "0", "preset": "ultrafast"}
        if ccw_rotation:
            stream.set_display_rotation(ccw_rotation)
        audio: Any = None
        if tone_hz is not None:
            audio = out.add_stream("aac", rate=16000)
            audio.layout = "mono"
        for t, pixels in zip(
            times_s, _frames(len(times_s), width, height, seed=seed, still=still), strict=True
        ):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = round(t / tb), tb
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if audio is not None:
            gap = times_s[-1] - times_s[-2] if len(times_s) > 1 else 0.1
            _encode_audio(out, audio, [mf.sine(tone_hz or 440.0, times_s[-1] + gap, 16000)], 16000)


def _encode_audio(out: Any, stream: Any, channels: list[np.ndarray], rate: int) -> None:
    """Encode planar float channels (one array each) into an audio stream, 1024 samples per frame."""
    samples = np.stack(channels).astype(np.float32)
    layout = stream.layout.name
    for start in range(0, samples.shape[1], 1024):
        chunk = np.ascontiguousarray(samples[:, start : start + 1024])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, start
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


def cfr(n: int, fps: float) -> list[float]:
    """Presentation times of n frames at a constant rate."""
    return [i / fps for i in range(n)]


def _png(width: int, height: int, *, rows: int | None = None, bit_depth: int = 1) -> bytes:
    """A greyscale PNG declaring width x height; `rows` of zero pixels are compressed (all when None)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    row = b"\x00" + bytes((width * bit_depth + 7) // 8)  # filter byte + packed zero pixels
    compressor = zlib.compressobj(9)
    body = [compressor.compress(row) for _ in range(height if rows is None else rows)]
    idat = b"".join(body) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_bytes(width: int = 96, height: int = 64) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(mf.textured_frame(width, height, seed=3)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _wav_bytes(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, subtype=subtype, format="WAV")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------
# builders, one per case
# ---------------------------------------------------------------------------------------------------


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _moov_at_end(path: Path) -> None:
    whole = io.BytesIO()
    write_clip(whole, times_s=cfr(30, 10), fmt="mp4", seed=seed_of(path))
    path.write_bytes(whole.getvalue()[:2000])  # the index (moov) is written last: cut off


def _cut_download(keep: float) -> Builder:
    """A 6 s MP4 with its index first (as streamed), cut off after `keep` of its bytes."""

    def build(path: Path) -> None:
        faststart = {"movflags": "+faststart"}  # moving the index needs a real file, not a buffer
        write_clip(path, times_s=cfr(60, 10), fmt="mp4", container_options=faststart, seed=seed_of(path))
        data = path.read_bytes()
        path.write_bytes(data[: round(len(data) * keep)])

    return build


def _copy_of(name: str) -> Builder:
    def build(path: Path) -> None:
        shutil.copyfile(path.parent / name, path)

    return build


def _random_bytes(path: Path) -> None:
    rng = np.random.default_rng(_RNG_SEED)
    path.write_bytes(b"\x00\x01" + rng.integers(0, 256, 8000, dtype=np.uint8).tobytes())


def _damaged_packets(fraction: float) -> Builder:
    """A 6 s H.264 MP4 whose video packets are overwritten with noise: `fraction` of them, evenly spread."""

    def build(path: Path) -> None:
        whole = io.BytesIO()
        options = {"bf": "0", "preset": "ultrafast", "g": "10"}
        write_clip(whole, times_s=cfr(60, 10), fmt="mp4", options=options, seed=seed_of(path))
        data = bytearray(whole.getvalue())
        spans = _packet_spans(bytes(data))
        rng = np.random.default_rng(_RNG_SEED)
        step = max(1, round(1 / fraction))
        for k, (pos, size) in enumerate(spans):
            if k % step == min(step - 1, 3) and size > 8:  # P-frames; keep the 4-byte NAL length
                data[pos + 4 : pos + size] = rng.integers(0, 256, size - 4, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))

    return build


def _packet_spans(data: bytes) -> list[tuple[int, int]]:
    """(byte offset, size) of every video packet, as the demuxer reports them."""
    container: Any
    with av.open(io.BytesIO(data)) as container:
        return [(int(p.pos), int(p.size)) for p in container.demux(video=0) if p.size and p.pos is not None]


def _huge_y4m(path: Path) -> None:
    header = b"YUV4MPEG2 W16000 H16000 F25:1 Ip A1:1 C420jpeg\nFRAME\n"
    path.write_bytes(header + bytes(range(256)) * 16)  # a sliver of the 384 MB first frame


def _ten_hours(path: Path) -> None:
    """Eleven frames an hour apart: a real ten-hour video of a few kilobytes."""
    write_clip(path, times_s=[3600.0 * k for k in range(11)], seed=seed_of(path))


def _sparse(size: int) -> Builder:
    def build(path: Path) -> None:
        with path.open("wb") as fh:
            fh.truncate(size)  # a hole: no disk is used

    return build


def _png_case(width: int, height: int, rows: int | None) -> Builder:
    def build(path: Path) -> None:
        path.write_bytes(_png(width, height, rows=rows))

    return build


def _jpeg_sof_bomb(path: Path) -> None:
    data = bytearray(_jpeg_bytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)  # height, width
    path.write_bytes(bytes(data))


def _truncated_jpeg(path: Path) -> None:
    data = _jpeg_bytes(320, 240)
    path.write_bytes(data[: len(data) // 3])


def _nan_wav(path: Path) -> None:
    samples = mf.sine(440, 1.0, 16000)
    samples[4000:4100] = np.nan
    path.write_bytes(_wav_bytes(samples, 16000, "FLOAT"))


def _id3_then_noise(path: Path) -> None:
    rng = np.random.default_rng(_RNG_SEED + 1)
    id3 = b"ID3\x04\x00\x00\x00\x00\x00\x00"  # an empty ID3v2 tag, then no MPEG frame at all
    path.write_bytes(id3 + rng.integers(0, 256, 6000, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00"))


def _noise_frames_mp3(path: Path) -> None:
    """A real MP3 with intact frame headers and noise for payloads: it opens; the frames the decoder
    refuses are counted and read past, the others decode (as noise). Issue 22: only a stream where
    nothing decodes loses its audio."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp3") as out:
        stream: Any = out.add_stream("libmp3lame", rate=16000)
        stream.layout = "mono"
        _encode_audio(out, stream, [mf.sine(440, 2.0, 16000)], 16000)
    data = bytearray(buf.getvalue())
    container: Any
    with av.open(io.BytesIO(bytes(data))) as container:
        spans = [(int(p.pos), int(p.size)) for p in container.demux(audio=0) if p.size and p.pos is not None]
    rng = np.random.default_rng(_RNG_SEED + 3)
    for pos, size in spans:
        data[pos + 4 : pos + size] = rng.integers(0, 256, size - 4, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def _video_with_bad_audio(path: Path) -> None:
    """Good H.264 video and an MP3 audio stream whose packets are noise."""
    rng = np.random.default_rng(_RNG_SEED + 2)
    tb = Fraction(1, 1000)
    with av.open(str(path), mode="w", format="matroska") as out:
        video: Any = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        video.options = {"bf": "0", "preset": "ultrafast"}
        audio: Any = out.add_stream("mp3", rate=16000)
        audio.layout = "mono"
        for i, pixels in enumerate(_frames(20, W, H, seed=seed_of(path))):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i * 100, tb
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for k in range(40):
            packet = av.Packet(rng.integers(1, 255, 300, dtype=np.uint8).tobytes())
            packet.stream = audio
            packet.pts = packet.dts = k * 50
            packet.time_base = tb
            out.mux(packet)


def _latin1_text(path: Path) -> None:
    path.write_bytes("Café au lait, crème brûlée, naïve façade: déjà vu.\n".encode("latin-1"))


def _gzip_text(path: Path) -> None:
    import gzip

    path.write_bytes(gzip.compress(b"a perfectly good sentence, gzipped and misnamed .txt\n" * 20))


def _tar(path: Path) -> None:
    import tarfile

    with tarfile.open(path, "w") as tar:
        data = b"escaped!"
        info = tarfile.TarInfo("../escaped_from_bad_media.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _html_page(path: Path) -> None:
    page = (
        "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
        "<body><h1>Not Found</h1></body></html>\n"
    )
    path.write_text(page * 3)


def _long_text(chars: int) -> Builder:
    def build(path: Path) -> None:
        sentence = "The quick brown fox jumps over the lazy dog. "
        path.write_text(sentence * (chars // len(sentence) + 2))

    return build


def _wav_with_header_only(path: Path) -> None:
    path.write_bytes(_wav_bytes(np.zeros(0, np.float32), 16000))


def _bare_h264(path: Path) -> None:
    """An Annex B elementary stream: frames carry no timestamps at all."""
    with av.open(str(path), mode="w", format="h264") as out:
        stream: Any = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"bf": "0", "preset": "ultrafast"}
        for i, pixels in enumerate(_frames(20, W, H, seed=seed_of(path))):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def _broken_utf8_text(path: Path) -> None:
    path.write_bytes("Café au lait, crème brûlée.".encode() + b" \xff\xfe then more text.\n")


def _captioned_malformed(path: Path) -> None:
    write_clip(path, times_s=cfr(20, 10), seed=seed_of(path))
    srt = "1\n00:00:00,000 --> 00:00:01,500\nFine.\n\n2\n00:00:02,000 --> 00:00:01,000\nEnds first.\n"
    path.with_suffix(".srt").write_text(srt, encoding="utf-8")


def _captioned_latin1(path: Path) -> None:
    write_clip(path, times_s=cfr(20, 10), seed=seed_of(path))
    srt = "1\n00:00:00,000 --> 00:00:01,500\nUn café près de la fenêtre.\n"
    path.with_suffix(".srt").write_bytes(srt.encode("latin-1"))


def _short_wav(path: Path) -> None:
    path.write_bytes(_wav_bytes(mf.sine(440, 0.01, 16000), 16000))  # 160 samples < n_fft (400)


def _unseekable_mkv(path: Path) -> None:
    with path.open("wb") as handle:
        write_clip(_Unseekable(handle), times_s=cfr(25, 10), fmt="matroska", seed=seed_of(path))


def _clip(**kwargs: Any) -> Builder:
    def build(path: Path) -> None:
        write_clip(path, seed=seed_of(path), **kwargs)

    return build


def _two_streams_each(path: Path) -> None:
    """Two video streams (the second, 48 px wide, is default) and two audio streams (the second, loud)."""
    tb = Fraction(1, 10)
    with av.open(str(path), mode="w", format="matroska") as out:
        videos: list[Any] = []
        for i in range(2):
            stream: Any = out.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 32 + 16 * i, 32, "yuv420p"
            stream.options = {"bf": "0", "preset": "ultrafast"}
            stream.disposition = av.stream.Disposition.default if i else av.stream.Disposition(0)
            videos.append(stream)
        audios: list[Any] = []
        for i in range(2):
            stream = out.add_stream("aac", rate=16000)
            stream.layout = "mono"
            stream.disposition = av.stream.Disposition.default if i else av.stream.Disposition(0)
            audios.append(stream)
        for k in range(20):
            for stream in videos:
                pixels = np.full((stream.height, stream.width, 3), 40 + 160 * (stream is videos[1]), np.uint8)
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts, frame.time_base = k, tb
                out.mux(stream.encode(frame))
        for stream in videos:
            out.mux(stream.encode())
        for stream, amplitude in zip(audios, (0.02, 0.5), strict=True):
            _encode_audio(out, stream, [mf.sine(440, 2.0, 16000, amplitude)], 16000)


def _audio_only_m4a(path: Path) -> None:
    with av.open(str(path), mode="w", format="ipod") as out:
        stream: Any = out.add_stream("aac", rate=44100)
        stream.layout = "stereo"
        tone = mf.sine(330, 2.5, 44100)
        _encode_audio(out, stream, [tone, tone * 0.5], 44100)


def _wav(
    *,
    duration_s: float = 1.0,
    rate: int = 16000,
    channels: int = 1,
    subtype: str = "PCM_16",
    amplitude: float = 0.5,
) -> Builder:
    def build(path: Path) -> None:
        mono = mf.sine(440, duration_s, rate, amplitude) if amplitude else np.zeros(round(duration_s * rate))
        samples = np.stack([mono] * channels, axis=1) if channels > 1 else mono
        path.write_bytes(_wav_bytes(samples.astype(np.float32), rate, subtype))

    return build


def _absurd_data_size(path: Path) -> None:
    data = bytearray(_wav_bytes(mf.sine(440, 1.0, 8000), 8000))
    at = data.find(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0x7FFF_FFF0)  # ~2 GiB declared, 16 kB present
    data[4:8] = struct.pack("<I", 0x7FFF_FFF0 + 36)
    path.write_bytes(bytes(data))


def _text(text: str, encoding: str = "utf-8") -> Builder:
    def build(path: Path) -> None:
        path.write_bytes(text.encode(encoding))

    return build


def _image(width: int, height: int, seed: int = 0) -> Builder:
    def build(path: Path) -> None:
        mf.write_image(path, width=width, height=height, seed=seed)

    return build


def _fifo(path: Path) -> None:
    os.mkfifo(path)  # nobody ever writes: opening it for reading would block forever


# ---------------------------------------------------------------------------------------------------
# the manifest
# ---------------------------------------------------------------------------------------------------

VFR_TIMES = [float(t) for t in np.cumsum([0.0] + [(0.04, 0.06, 0.11)[i % 3] for i in range(29)])]
SPACES_NAME = "clip with spaces and 'single' \"double\" quotes.mp4"
UNICODE_NAME = "ünïcødé 日本語：full-width colon.wav"
SHELL_NAME = "-rf ;rm -rf $(touch pwned) `x` & | > .png"
BACKSLASH_NAME = "back\\slash and\ttab.txt"
PCM_SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


def cases() -> list[Case]:
    """Every case, in build order (a duplicate follows the file it copies)."""
    c = ErrorCode
    return [
        # 1 zero-byte
        Case("empty.mp4", 1, "Q", _empty, c.EMPTY_FILE, "read"),
        Case("empty too.wav", 1, "Q", _empty, c.EMPTY_FILE, "read"),
        # 2 truncated / corrupt containers
        Case("moov_missing.mp4", 2, "Q", _moov_at_end, c.CONTAINER_CORRUPT, "probe"),
        Case("moov_missing copy.mp4", 26, "dup", _copy_of("moov_missing.mp4"), same_as="moov_missing.mp4"),
        Case("random_bytes.bin", 2, "Q", _random_bytes, c.UNSUPPORTED_KIND, "probe"),
        # 3 corrupt packets: a few are survivable, most are not
        Case("few_bad_packets.mp4", 3, "D", _damaged_packets(0.05), flags=("decode_errors=",)),
        Case("mostly_bad_packets.mp4", 3, "Q", _damaged_packets(1.0), c.VIDEO_DECODE, "decode"),
        Case("cut_tail.mp4", 2, "D", _cut_download(0.85), flags=("decode_errors=",)),
        Case("cut_in_half.mp4", 2, "Q", _cut_download(0.5), c.VIDEO_DECODE, "decode"),
        # 4, 5, 6 timestamps
        Case("vfr.mp4", 4, "N", _clip(times_s=VFR_TIMES)),
        Case("no_pts.h264", 5, "D", _bare_h264, flags=("synthetic_pts", "duration_from_frames")),
        Case(
            "b_frames.avi",
            5,
            "N",
            _clip(times_s=cfr(20, 10), codec="mpeg4", options={"bf": "2", "g": "12"}, tb=Fraction(1, 10)),
        ),
        Case("offset_start.ts", 6, "N", _clip(times_s=cfr(20, 10), tone_hz=440.0)),
        # 7 rotation
        Case("rotated_matrix.mp4", 7, "N", _clip(times_s=cfr(10, 10), ccw_rotation=-90)),
        # 8 odd sizes
        Case("odd_66x50.mov", 8, "N", _clip(times_s=cfr(10, 10), width=66, height=50)),
        Case("odd_65x49.mkv", 8, "N", _clip(times_s=cfr(10, 10), width=65, height=49, pix_fmt="yuv444p")),
        # 9 limits
        Case("huge_16k.y4m", 9, "Q", _huge_y4m, c.LIMIT_PIXELS, "probe"),
        Case("ten_hours.mp4", 9, "Q", _ten_hours, c.LIMIT_DURATION, "probe"),
        Case("sparse_over_4gib.bin", 9, "Q", _sparse(4 * 1024**3 + 1), c.LIMIT_BYTES, "read"),
        Case("too_long.txt", 9, "Q", _long_text(5_000_000), c.LIMIT_TEXT, "decode"),
        Case("too_many_bytes.txt", 9, "Q", _long_text(20_000_100), c.LIMIT_TEXT, "decode"),
        Case("absurd_data_size.wav", 9, "N", _absurd_data_size),
        # 10 decompression bombs
        Case("bomb_header_100k.png", 10, "Q", _png_case(100_000, 100_000, 0), c.LIMIT_PIXELS, "probe"),
        Case("bomb_zeros_20k.png", 10, "Q", _png_case(20_000, 20_000, None), c.LIMIT_PIXELS, "probe"),
        Case("over_limit_9000.png", 10, "Q", _png_case(9000, 9000, 0), c.LIMIT_PIXELS, "probe"),
        Case("bomb_sof.jpg", 10, "Q", _jpeg_sof_bomb, c.LIMIT_PIXELS, "probe"),
        Case("truncated.jpg", 2, "Q", _truncated_jpeg, c.IMAGE_DECODE, "decode"),
        # 11, 12, 13 streams
        Case("no_audio.mp4", 11, "N", _clip(times_s=cfr(20, 10))),
        Case("audio_only.m4a", 12, "N", _audio_only_m4a),
        Case("two_streams_each.mkv", 13, "N", _two_streams_each),
        # 14, 15 channels and rates
        Case("six_channel_48k.wav", 14, "N", _wav(duration_s=1.5, rate=48000, channels=6, subtype="PCM_24")),
        Case("sixteen_channel.wav", 14, "N", _wav(duration_s=1.0, rate=16000, channels=16)),
        Case("rate_11025.wav", 15, "N", _wav(duration_s=1.2, rate=11025)),
        Case("rate_7hz.wav", 15, "N", _wav(duration_s=2.0, rate=7, amplitude=0.5)),
        # 16, 17 short and silent audio, non-finite samples
        Case("short_10ms.wav", 16, "D", _short_wav, flags=("audio_padded",)),
        Case("header_only.wav", 16, "Q", _wav_with_header_only, c.TOO_SHORT, "decode"),
        Case("silence.wav", 17, "N", _wav(duration_s=1.0, amplitude=0.0)),
        Case("nan_samples.wav", 17, "Q", _nan_wav, c.NONFINITE_FEATURE, "decode"),
        Case("black_frames.mp4", 17, "N", _clip(times_s=cfr(20, 10), still=True)),
        # 18 sample formats
        *[Case(f"pcm_{s.lower()}.wav", 18, "N", _wav(duration_s=1.0, subtype=s)) for s in PCM_SUBTYPES],
        # 19 undecodable audio
        Case("noise_frames.mp3", 19, "D", _noise_frames_mp3, flags=("audio_decode_errors=",)),
        Case("id3_then_noise.mp3", 2, "Q", _id3_then_noise, c.CONTAINER_CORRUPT, "probe"),
        Case("bad_audio_track.mkv", 19, "D", _video_with_bad_audio, c.AUDIO_DECODE, "audio"),
        # 20, 21 text
        Case("latin1.txt", 20, "N", _latin1_text),  # decoded as the detected cp1252, charset recorded
        Case("broken_utf8.txt", 20, "Q", _broken_utf8_text, c.TEXT_ENCODING, "decode"),
        Case("utf16_bom.txt", 20, "N", _text("Owls hunt at night. They fly silently.", "utf-16")),
        Case(
            "captioned.mp4",
            20,
            "D",
            _captioned_malformed,
            c.CAPTION_MALFORMED,
            "text",
            extra_files=("captioned.srt",),
        ),
        Case("captioned_latin1.mp4", 20, "N", _captioned_latin1, extra_files=("captioned_latin1.srt",)),
        Case("gzip_named.txt", 21, "Q", _gzip_text, c.UNSUPPORTED_KIND, "probe"),
        Case("archive.tar", 24, "Q", _tar, c.UNSUPPORTED_KIND, "probe"),
        Case("error_page.mp4", 27, "Q", _html_page, c.NOT_MEDIA, "probe"),
        # 22 a FIFO: never opened, never an input
        Case("never_written.fifo", 22, "skip", _fifo),
        # 23 hostile names
        Case(SPACES_NAME, 23, "N", _clip(times_s=cfr(10, 10))),
        Case(UNICODE_NAME, 23, "N", _wav(duration_s=1.0, rate=22050)),
        Case(SHELL_NAME, 23, "N", _image(40, 30, seed=5)),
        Case(BACKSLASH_NAME, 23, "N", _text("A name with a backslash and a tab is still a name.")),
        # 26 duplicates
        Case("picture.png", 26, "N", _image(96, 64, seed=7)),
        Case("picture again.png", 26, "dup", _copy_of("picture.png"), same_as="picture.png"),
        # 28 duration missing
        Case("no_duration.mkv", 28, "D", _unseekable_mkv, flags=("duration_from_frames",)),
        # 30 empty inputs for encoders
        Case("whitespace_only.txt", 30, "Q", _text(" \n\n\t  \n"), c.TOO_SHORT, "decode"),
        # 31 tiny videos and images
        Case("one_frame.mp4", 31, "N", _clip(times_s=[0.0])),
        Case("tiny_2x2.mp4", 31, "N", _clip(times_s=cfr(10, 10), width=2, height=2)),
        Case("pixel_1x1.png", 31, "N", _image(1, 1)),
    ]


def build_corpus(root: Path) -> dict[str, Case]:
    """Write every case into `root` and return the manifest by file name."""
    root.mkdir(parents=True, exist_ok=True)
    built = {}
    for case in cases():
        case.build(root / case.name)
        built[case.name] = case
    return built
