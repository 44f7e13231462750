"""Audio files with one damaged packet, written with PyAV into real containers, then damaged.

Two kinds of damage, at the first, middle or last packet: `bytes` zeroes the first half of the packet in
the file (its sync word and header included, which every codec's decoder or parser notices), `cut`
leaves only the packet's first half. In an indexed container (AVI, MP4) the packet is muxed cut short,
so the index stays right, as when a writer dropped bytes; in a stream format (MP3, Ogg, FLAC) the bytes
are removed from the file, as when a download lost them. `all_zero` zeroes every packet as it is muxed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np

Where = Literal["first", "middle", "last"]
Damage = Literal["bytes", "cut", "none", "all_zero"]


@dataclass(frozen=True)
class Codec:
    """How to write one codec: suffix, muxer, encoder, rate, and whether the container has an index."""

    suffix: str
    muxer: str
    encoder: str
    rate: int
    indexed: bool
    video: str | None = None


CODECS = {
    "ac3": Codec("avi", "avi", "ac3", 48000, True, video="mpeg4"),
    "aac": Codec("m4a", "ipod", "aac", 48000, True),
    "mp3": Codec("mp3", "mp3", "libmp3lame", 44100, False),
    "opus": Codec("ogg", "ogg", "libopus", 48000, False),
    "vorbis": Codec("ogg", "ogg", "vorbis", 44100, False),
    "flac": Codec("flac", "flac", "flac", 44100, False),
}


def tone(rate: int, seconds: float) -> np.ndarray:
    """(2, n) float32: a 440 Hz tone, loud enough that silence in its place shows."""
    t = np.arange(round(rate * seconds)) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([x, x])


def write(path: Path, name: str, seconds: float, where: Where, damage: Damage) -> int:
    """Write `seconds` of tone as codec `name`, packet `where` damaged; returns the packet count."""
    codec = CODECS[name]
    with av.open(str(path), "w", format=codec.muxer) as out:
        video = _video_stream(out, codec.video) if codec.video else None  # streams first, then packets
        stream = out.add_stream(codec.encoder, rate=codec.rate)
        stream.layout = "stereo"
        if codec.encoder == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        packets = _encoded(stream, codec.rate, seconds)
        k = {"first": 0, "middle": len(packets) // 2, "last": len(packets) - 1}[where]
        for i, packet in enumerate(packets):
            if damage == "all_zero":
                packet = _replaced(packet, stream, bytes(packet.size))
            elif i == k and damage == "cut" and codec.indexed:
                packet = _replaced(packet, stream, bytes(packet)[: packet.size // 2])
            out.mux(packet)
        if video is not None:
            _mux_video(out, video, seconds)
    if damage == "bytes" or (damage == "cut" and not codec.indexed):
        _damage_file(path, where, damage)
    return len(packets)


def _encoded(stream: av.AudioStream, rate: int, seconds: float) -> list[av.Packet]:
    """Every packet of the tone, encoded frame by frame."""
    data = tone(rate, seconds)
    size = stream.codec_context.frame_size or 1024
    packets: list[av.Packet] = []
    for i in range(0, data.shape[1], size):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, i : i + size]), "fltp", "stereo")
        frame.sample_rate, frame.pts = rate, i
        packets += stream.encode(frame)
    return packets + list(stream.encode(None))


def _replaced(packet: av.Packet, stream: av.AudioStream, data: bytes) -> av.Packet:
    """A packet of other bytes with the same timestamps."""
    cut = av.Packet(data)
    cut.pts, cut.dts, cut.time_base, cut.stream = packet.pts, packet.dts, packet.time_base, stream
    if packet.duration:
        cut.duration = packet.duration
    return cut


def _video_stream(out: av.container.OutputContainer, encoder: str) -> av.VideoStream:
    """A small video stream beside the audio, as in an MPEG-4 AVI with an AC3 soundtrack."""
    video = out.add_stream(encoder, rate=25)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    return video


def _mux_video(out: av.container.OutputContainer, video: av.VideoStream, seconds: float) -> None:
    """Grey frames for the whole duration."""
    for i in range(round(25 * seconds)):
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
        frame.pts = i
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode(None):
        out.mux(packet)


def _damage_file(path: Path, where: Where, damage: Damage) -> None:
    """Zero the first half of an audio packet in the file, or remove its second half."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        found = [(p.pos, p.size) for p in container.demux(stream) if p.size]
    pos, size = found[{"first": 0, "middle": len(found) // 2, "last": len(found) - 1}[where]]
    data = bytearray(path.read_bytes())
    if damage == "bytes":
        data[pos : pos + size // 2] = bytes(size // 2)
    else:
        del data[pos + size // 2 : pos + size]
    path.write_bytes(bytes(data))
