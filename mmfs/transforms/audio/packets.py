"""Read an audio stream packet by packet, past damaged packets: each is counted, and lost audio is silence.

The decoder is fed one packet at a time, as the video path does: a packet it refuses is counted and
skipped, a frame it marks corrupt is counted and kept, and a demuxer that gives up mid-file ends the
stream after one more count. Audio a damaged or missing packet held shows as a jump in the frames'
timestamps; that jump is filled with zeros (and counted as lost packets, less those already counted), so
everything after the damage stays at its own time and the windows of the segment grid keep their audio.
Some demuxers re-time the packets after a loss (Ogg Vorbis, MP3, FLAC): what the stream declares and
what decoded then differ at the end, and that shortfall is counted too. Damage that a codec without a
checksum decodes as valid (bytes inside an MP3, Opus or Vorbis payload) is, as for FFmpeg, not seen.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from mmfs.transforms.audio.resample import frame_array

# A jump past this is a timestamp discontinuity (a chained stream, a wrap), not lost audio: not filled.
MAX_GAP_S = 5.0
# A shortfall at the end over this share of the declared duration is a wrong header estimate, not loss.
MAX_SHORTFALL_SHARE = 0.5
# Formats whose timestamps count from zero at the stream's first sample (Ogg granule positions).
ZERO_ORIGIN_FORMATS = frozenset({"ogg"})
# Encoders may start an Ogg stream a block or two past zero: a leading gap is a lost page only past this.
MIN_LEADING_GAP_S = 0.25
# Demuxers that derive timestamps from the audio itself (Ogg granules, raw elementary streams): a lost
# packet there shows only as a jump or a shortfall. In containers that store each packet's time (MP4,
# MOV, AVI, ASF, Matroska), timestamps jitter by part of a frame and jump at edits, so a jump counts
# as loss only where the decoder refused a packet (as FFmpeg counts), and the end is not compared.
RETIMING_FORMATS = frozenset({"ogg", "mp3", "flac", "aac", "ac3", "eac3", "wav"})


@dataclass
class AudioDecodeLog:
    """What decoding one audio stream met: frames decoded, and packets damaged or lost."""

    frames: int = 0
    errors: int = 0  # packets refused, frames marked corrupt, packets lost (timestamp gaps)
    filled_samples: int = 0  # zeros put where lost audio was, at the source rate
    source_samples: int = 0  # decoded and filled, at the source rate
    _pending: int = 0  # refused packets since the last frame (their loss shows in the next gap)
    _unfilled: int = 0  # refused packets whose loss showed in no gap (it may show at the end)
    _first_lost_s: float | None = None  # time of a refused packet before any frame decoded


@dataclass
class _Clock:
    """Where the next frame should start, from the last frame decoded."""

    next_s: float | None = None
    last_samples: int = 0
    channels: int = 0
    rate: int = 0
    max_samples: int = 0  # the longest frame yet: lost audio is counted in frames of this length
    started: bool = False  # a frame was decoded (before it, only a lost packet or a zero origin times it)
    retiming: bool = True  # the demuxer times packets from the audio (RETIMING_FORMATS)


def decoded_blocks(
    container: Any, stream: Any, log: AudioDecodeLog
) -> Generator[tuple[int, np.ndarray], None, None]:
    """(source rate, (channels, n) float32) per frame, with zeros where packets were lost."""
    clock = _Clock(retiming=container.format.name in RETIMING_FORMATS)
    if container.format.name in ZERO_ORIGIN_FORMATS:
        log._first_lost_s = 0.0
    frames = _frames(container, stream, log)
    try:
        yield from _blocks(frames, clock, log)
    finally:
        frames.close()  # the demuxer's last packet goes now, not when the garbage collector finds it
    _count_shortfall(stream, clock, log)


def _blocks(frames: Iterator[Any], clock: _Clock, log: AudioDecodeLog) -> Iterator[tuple[int, np.ndarray]]:
    """Each frame's samples, after zeros for the audio lost before it."""
    for frame in frames:
        block = frame_array(frame)
        gap = _gap_samples(frame, clock, log)
        if gap:
            yield frame.sample_rate, np.zeros((clock.channels or block.shape[0], gap), np.float32)
        start = _frame_time(frame)
        if start is None:  # a frame without a timestamp follows on from the last one
            start = clock.next_s
        clock.next_s = None if start is None else start + frame.samples / frame.sample_rate
        clock.started, clock.last_samples, clock.channels = True, frame.samples, block.shape[0]
        log.source_samples += gap + frame.samples
        clock.rate, clock.max_samples = frame.sample_rate, max(clock.max_samples, frame.samples)
        yield frame.sample_rate, block


def _count_shortfall(stream: Any, clock: _Clock, log: AudioDecodeLog) -> None:
    """Packets lost where no timestamp showed it: what the stream declares and did not decode."""
    if not clock.retiming or stream.duration is None or stream.time_base is None:
        return
    if not clock.rate or not clock.max_samples:
        return
    declared = float(stream.duration * stream.time_base) * clock.rate
    missing = declared - log.source_samples
    if missing <= clock.max_samples / 2 or missing > MAX_SHORTFALL_SHARE * declared:
        return
    lost = max(1, round(missing / clock.max_samples))
    log.errors += max(0, lost - log._unfilled - log._pending)


def _frames(container: Any, stream: Any, log: AudioDecodeLog) -> Generator[Any, None, None]:
    """The stream's decoded frames; refused packets and a failing demuxer are counted, not raised."""
    packets = container.demux(stream)
    try:
        yield from _decoded(packets, stream, log)
    finally:
        packets.close()


def _decoded(packets: Iterator[Any], stream: Any, log: AudioDecodeLog) -> Iterator[Any]:
    """Decode packet by packet (see `_frames`)."""
    while True:
        try:
            packet = next(packets, None)
        except (av.FFmpegError, OSError):
            log.errors += 1
            packet = None
        try:
            frames = stream.decode(packet)  # None, or demux's final empty packet, drains the decoder
        except (av.FFmpegError, ValueError):  # InvalidDataError is both
            log.errors += 1
            log._pending += 1
            if log.frames == 0 and log._first_lost_s is None and packet is not None:
                log._first_lost_s = _packet_time(packet)
            frames = []
        for frame in frames:
            log.frames += 1
            log.errors += bool(frame.is_corrupt)
            yield frame
        if packet is None or packet.size == 0:
            return


def _gap_samples(frame: Any, clock: _Clock, log: AudioDecodeLog) -> int:
    """Samples lost before `frame` (0 when it follows on); counts the packets not yet counted."""
    start = _frame_time(frame)
    expected = clock.next_s if clock.started else log._first_lost_s
    pending, log._pending = log._pending, 0
    frame_len = max(clock.max_samples, frame.samples, 1)
    if not clock.started and not pending:  # only a zero origin to go by: an Ogg page's worth at least
        frame_len = max(frame_len, round(2 * MIN_LEADING_GAP_S * frame.sample_rate))
    gap = 0 if start is None or expected is None else round((start - expected) * frame.sample_rate)
    if gap <= frame_len // 2 or gap > MAX_GAP_S * frame.sample_rate or not (clock.retiming or pending):
        log._unfilled += pending
        return 0
    lost = max(1, round(gap / frame_len))
    log.errors += max(0, lost - pending)
    log.filled_samples += gap
    return gap


def _frame_time(frame: Any) -> float | None:
    if frame.pts is None or frame.time_base is None:
        return None
    return float(frame.pts * frame.time_base)


def _packet_time(packet: Any) -> float | None:
    if packet.pts is None or packet.time_base is None:
        return None
    return float(packet.pts * packet.time_base)
