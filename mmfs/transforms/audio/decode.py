"""Decode the audio stream of any container (PyAV) to float32 at one rate, mono or per channel.

Packets are read one at a time past damage (`audio.packets`: counted, lost audio filled with silence);
frames are converted to (channels, samples), downmixed (channel mean) before resampling when asked,
then resampled block by block with soxr (`audio.resample`), so memory beyond the output stays flat in
the file's duration. A stream that changes rate mid-way gets a fresh resampler from that point.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from mmfs.errors import EmptyFile, ErrorCode, MediaDecodeError, MediaError, MediaLimitExceeded
from mmfs.transforms.audio.packets import AudioDecodeLog, decoded_blocks
from mmfs.transforms.audio.resample import BlockResampler

HEADER_SLACK = 2.0  # headers may only estimate duration (bitrate): reject early only when far past
ChannelMode = Literal["downmix", "keep"]


@dataclass
class DecodedAudio:
    """Float32 samples in [-1, 1] at `sample_rate`, and what the source was.

    `samples` is the mono mixdown (channel mean) every consumer of one signal uses (encoders, VAD);
    `channel_samples` is (channels, samples) when channels were kept, else None.
    """

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    duration_s: float
    channel_samples: np.ndarray | None = None
    decode_errors: int = 0  # damaged or lost packets read past (audio_packets), 0 for a clean stream


@dataclass
class _Source:
    """Rate and channel count of the first decoded frame, and the damage met on the way."""

    rate: int = 0
    channels: int = 0
    log: AudioDecodeLog = field(default_factory=AudioDecodeLog)


def decode_audio(
    path: str | Path,
    *,
    sample_rate: int,
    max_duration_s: float,
    stream_index: int | None = None,
    channels: ChannelMode = "downmix",
) -> DecodedAudio:
    """Decode an audio stream at `sample_rate`, downmixed or with its channels kept."""
    source = _Source()
    blocks = list(audio_blocks(path, sample_rate, max_duration_s, stream_index, channels, source))
    if not blocks or sum(b.shape[1] for b in blocks) == 0:
        raise MediaError(f"{path}: audio stream has no samples", code=ErrorCode.TOO_SHORT)
    data = np.concatenate(blocks, axis=1)
    del blocks
    mono = data[0] if data.shape[0] == 1 else data.mean(axis=0, dtype=np.float32)
    kept = data if channels == "keep" else None
    n = mono.shape[0]
    return DecodedAudio(
        mono, sample_rate, source.rate, source.channels, n / sample_rate, kept, source.log.errors
    )


def audio_blocks(
    path: str | Path,
    sample_rate: int,
    max_duration_s: float,
    stream_index: int | None = None,
    channels: ChannelMode = "downmix",
    source: _Source | None = None,
) -> Iterator[np.ndarray]:
    """(channels, n) float32 blocks at `sample_rate` (one channel when downmixed), clipped to [-1, 1].

    Damaged packets are read past and counted in `source.log`. Raises MediaLimitExceeded as soon as
    the output passes `max_duration_s`, MediaDecodeError when FFmpeg cannot open the stream or when
    not one of its packets decodes.
    """
    source = source if source is not None else _Source()
    _check_readable(path)
    limit = math.ceil(max_duration_s * sample_rate)
    total = 0
    try:
        with av.open(str(path)) as container:
            stream = _audio_stream(container, stream_index, path)
            _check_declared_duration(container, stream, max_duration_s, path)
            blocks = decoded_blocks(container, stream, source.log)
            resampled = _resampled(blocks, sample_rate, channels, source, path)
            try:
                for block in resampled:
                    total += block.shape[1]
                    if total > limit:
                        raise MediaLimitExceeded(
                            f"{path}: decoded audio passes the {max_duration_s:g} s limit",
                            code=ErrorCode.LIMIT_DURATION,
                        )
                    np.clip(block, -1.0, 1.0, out=block)  # float sources and resampling may overshoot
                    yield block
            finally:
                # The demuxing generators (and the last packet they hold) go before the container
                # closes, as in the video path: a packet freed after it, whenever the garbage collector
                # reaches an abandoned generator, would free its codec context after the container.
                resampled.close()
                blocks.close()
    except (av.FFmpegError, ValueError) as err:  # InvalidDataError is both
        raise MediaDecodeError(f"{path}: cannot decode audio: {err}", code=ErrorCode.AUDIO_DECODE) from err
    if source.log.frames == 0 and source.log.errors:
        raise MediaDecodeError(
            f"{path}: no decodable audio: {source.log.errors} packets damaged, none decoded",
            code=ErrorCode.AUDIO_DECODE,
        )


def _resampled(
    frames: Iterator[tuple[int, np.ndarray]], rate: int, mode: ChannelMode, source: _Source, path: str | Path
) -> Generator[np.ndarray, None, None]:
    """(source rate, block) pairs to resampled blocks; a new resampler whenever the rate changes."""
    resampler: BlockResampler | None = None
    for frame_rate, block in frames:
        if not source.rate:
            source.rate, source.channels = frame_rate, block.shape[0]
        if mode == "downmix" and block.shape[0] > 1:  # the channel mean, as one BLAS product
            block = np.matmul(np.full((1, block.shape[0]), 1.0 / block.shape[0], np.float32), block)
        elif mode == "keep" and block.shape[0] != source.channels:
            raise MediaDecodeError(
                f"{path}: channel count changes mid-stream ({source.channels} to {block.shape[0]}); "
                "use audio.channels: downmix",
                code=ErrorCode.AUDIO_DECODE,
            )
        if resampler is None or resampler.source_rate != frame_rate:
            if resampler is not None:
                yield resampler.flush()
            resampler = BlockResampler(frame_rate, rate, block.shape[0])
        out = resampler.push(block)
        if out.shape[1]:
            yield out
    if resampler is not None:
        yield resampler.flush()


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
