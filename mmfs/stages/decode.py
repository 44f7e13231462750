"""Per-item CPU work: read, detect the kind, probe, decode and run the transforms of each modality.

Errors are data here (STYLE habit 1): a failure of the whole item makes it `failed`; a failure of one
modality (an undecodable audio track in a good video) makes it `degraded`. Each becomes a
`StageFailure`, later a `quarantine` row, and the run goes on.
"""

from __future__ import annotations

import dataclasses
import time
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mmfs.config import PipelineConfig
from mmfs.errors import (
    CaptionFormatError,
    ErrorCode,
    MediaDecodeError,
    MediaError,
    MediaLimitExceeded,
    MmfsError,
    UnsupportedMedia,
)
from mmfs.faults import Fault, hit
from mmfs.media.ffmpeg_log import quiet_ffmpeg
from mmfs.media.kinds import read_head, sniff
from mmfs.media.probe import ProbeInfo, probe
from mmfs.stages.items import Extracted, PendingItem, StageFailure
from mmfs.stages.recompute import computed_tables, decodes_video
from mmfs.stages.remote import local_copy
from mmfs.stages.speech import maybe_denoise, snr_columns
from mmfs.transforms.image.pixels import decode_image, image_size
from mmfs.transforms.text.captions import TextSegment, read_sidecar
from mmfs.transforms.text.clean import clean_document
from mmfs.transforms.video.shots import Shot, detect_shots
from mmfs.transforms.video.types import SampledFrames

if TYPE_CHECKING:  # the audio, frame and flow transforms (librosa, scipy, decord, OpenCV, numba) load
    # where an item of their kind is decoded: a worker that sees only photos and texts never imports them
    from mmfs.transforms.audio.window_types import AudioWindow
    from mmfs.transforms.video.flow_types import FlowPair

# Suffixes that promise audio, video or an image: text under one of these names is not media (item 27).
# `.ts` and `.mts` are left out: they name TypeScript sources as often as MPEG transport streams.
MEDIA_SUFFIXES = frozenset(
    {
        *(".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".m2ts", ".flv", ".wmv", ".mpg", ".mpeg"),
        *(".3gp", ".ogv", ".y4m", ".h264", ".hevc"),
        *(".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma", ".aiff", ".aif", ".amr"),
        *(".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"),
    }
)


_TIME_KEYS = (("start_s", "start"), ("end_s", "end"))  # manifest columns of a caption's time span


# The audio, frame and flow transforms, imported on first use (see the imports above); module-level
# names, so the stages below (and tests counting their calls) reach them as before.
def decode_audio(*args: Any, **kwargs: Any) -> Any:
    """`transforms.audio.windows.decode_audio` (PyAV, librosa), imported on first use."""
    from mmfs.transforms.audio.windows import decode_audio as run

    return run(*args, **kwargs)


def window_features(*args: Any, **kwargs: Any) -> list[AudioWindow]:
    """`transforms.audio.windows.window_features` (librosa, scipy), imported on first use."""
    from mmfs.transforms.audio.windows import window_features as run

    return run(*args, **kwargs)


def sample_frames(*args: Any, **kwargs: Any) -> SampledFrames:
    """`transforms.video.frames.sample_frames` (decord, PyAV), imported on first use."""
    from mmfs.transforms.video.frames import sample_frames as run

    return run(*args, **kwargs)


def flow_sequence(*args: Any, **kwargs: Any) -> list[FlowPair]:
    """`transforms.video.flow.flow_sequence` (OpenCV, numba), imported on first use."""
    from mmfs.transforms.video.flow import flow_sequence as run

    return run(*args, **kwargs)


def extract(
    pending: PendingItem, cfg: PipelineConfig, on_probe: Callable[[float | None], None] | None = None
) -> Extracted:
    """Run the CPU stages for one item; never raises for bad media.

    `on_probe` is told the item's duration once it is known (the isolated decoder sets its deadline
    from it). An object-store item is decoded from a temporary local copy, removed afterwards.
    """
    try:
        with local_copy(pending.item, cfg.sources.storage_options, cfg.sources.cache_dir) as item:
            local = pending if item is pending.item else dataclasses.replace(pending, item=item)
            out = _extract_local(local, cfg, on_probe)
    except OSError as err:  # the copy could not be written (disk full, cache dir missing)
        out = Draft(pending)
        _fail(out, "read", MediaError(f"{pending.item.uri}: cannot copy locally ({err})"))
    except MediaError as err:  # the object could not be read
        out = Draft(pending)
        _fail(out, "read", err)
    out.pending = pending  # the item as discovered (its uri), never the temporary copy
    return out.freeze()


@dataclasses.dataclass
class Draft:
    """An `Extracted` while decoding fills it in; frozen once the item is decoded (`freeze`)."""

    pending: PendingItem
    kind: str = "unknown"
    probe: ProbeInfo | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    frames: SampledFrames | None = None
    flow: list[FlowPair] = dataclasses.field(default_factory=list)
    shots: list[Shot] | None = None
    audio_windows: list[AudioWindow] = dataclasses.field(default_factory=list)
    audio_samples: np.ndarray | None = None
    audio_rate: int = 0
    audio_columns: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    audio_raw: np.ndarray | None = None
    texts: list[TextSegment] = dataclasses.field(default_factory=list)
    failures: list[StageFailure] = dataclasses.field(default_factory=list)
    flags: list[str] = dataclasses.field(default_factory=list)
    stage_seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def computed(self) -> frozenset[str]:
        """The modality tables this item's decoding serves."""
        return computed_tables(self.pending.only)

    def freeze(self) -> Extracted:
        """The decoded item as the frozen record the later stages share (lists become tuples)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("flow", "audio_windows", "texts", "failures", "flags"):
            values[name] = tuple(values[name])
        values["shots"] = None if self.shots is None else tuple(self.shots)
        values["audio_columns"], values["stage_seconds"] = dict(self.audio_columns), dict(self.stage_seconds)
        return Extracted(**values)


def _extract_local(
    pending: PendingItem, cfg: PipelineConfig, on_probe: Callable[[float | None], None] | None
) -> Draft:
    """`extract` on an item whose bytes are in a local file."""
    quiet_ffmpeg()
    out = Draft(pending)
    try:
        _timed(out, "probe", lambda: _detect(out, cfg))
    except MmfsError as err:  # what it is, or a limit it breaks, before any decoding
        _fail(out, "probe", err)
        return out
    if on_probe is not None:
        on_probe(out.duration_s)
    computed = out.computed  # a stale item decodes only what its stale tables need
    if out.kind == "video" and shots_wanted(cfg):  # the segment grid may need them when no frame is redone
        _optional(out, "shots", lambda: _shots(out, cfg))
    try:
        hit(Fault.MID_TRANSFORM, key=pending.item.uri)
        ocr_text = cfg.image.ocr and "text" in computed  # OCR text rows are read from the frames
        if out.kind == "video" and (decodes_video(computed) or ocr_text):
            _timed(out, "frames", lambda: _video(out, cfg))
        elif out.kind == "image" and ("frames" in computed or ocr_text):
            _timed(out, "frames", lambda: _image(out, cfg))
        elif out.kind == "text" and "text" in computed:
            _timed(out, "text", lambda: _document(out, cfg))
    except MmfsError as err:
        _fail(out, "decode", err)
        return out
    video_audio = out.kind == "video" and cfg.video.audio  # video.audio off: the track is not decoded
    has_audio = out.kind == "audio" or (video_audio and out.probe is not None and out.probe.has_audio)
    if has_audio and "audio" in computed:
        _optional(out, "audio", lambda: _audio(out, cfg))
    video_flow = out.kind == "video" and cfg.flow.enabled and "flow" in computed
    if video_flow and out.frames is not None and len(out.frames.times_s) > 1:
        _optional(out, "flow", lambda: _flow(out, cfg))
    if out.kind != "text" and "text" in computed:
        _optional(out, "text", lambda: _attached_text(out))
    return out


def _timed(out: Draft, stage: str, fn: object) -> None:
    start = time.perf_counter()
    try:
        fn()  # type: ignore[operator]
    finally:
        out.stage_seconds[stage] = out.stage_seconds.get(stage, 0.0) + time.perf_counter() - start


def _optional(out: Draft, stage: str, fn: object) -> None:
    """A modality that may fail alone: the item is then degraded, not lost."""
    try:
        _timed(out, stage, fn)
    except MmfsError as err:
        _fail(out, "decode" if stage == "audio" and out.kind == "audio" else stage, err)


def _fail(out: Draft, stage: str, err: MmfsError) -> None:
    """Record a failure; its message names the file (a transform's own message may not)."""
    name = out.pending.item.path.name
    if name not in err.message:
        err = type(err)(f"{name}: {err.message}", code=err.code)
    out.failures.append(StageFailure(stage, err))


def _detect(out: Draft, cfg: PipelineConfig) -> None:
    """The item's kind from its bytes, its container's description, and the limits checked on both."""
    path = out.pending.item.path
    sniffed = sniff(read_head(path))
    if sniffed == "text" and path.suffix.lower() in MEDIA_SUFFIXES:
        raise MediaError(
            f"{path.name}: text where {path.suffix} media was expected (an error page saved as media?)",
            code=ErrorCode.NOT_MEDIA,
        )
    if sniffed == "image":
        out.kind = sniffed
        out.width, out.height = image_size(path, max_pixels=cfg.limits.max_pixels)
        return
    if sniffed == "text":
        out.kind = sniffed
        return
    if sniffed == "binary":
        raise UnsupportedMedia(f"{path.name}: binary data of no supported media kind")
    try:
        info = probe(path)
    except MediaDecodeError as err:
        if sniffed != "unknown":
            raise
        raise UnsupportedMedia(f"{path.name}: no known signature, and FFmpeg cannot open it") from err
    out.probe = info
    if info.has_video:
        out.kind = "video"
    elif info.has_audio:
        out.kind = "audio"
    else:
        raise UnsupportedMedia(f"{path.name}: container has no audio or video stream")
    out.duration_s = info.duration_s
    out.width, out.height, out.rotation = info.width, info.height, info.rotation
    _check_limits(out, cfg)


def _check_limits(out: Draft, cfg: PipelineConfig) -> None:
    name = out.pending.item.path.name
    if out.duration_s is not None and out.duration_s > cfg.limits.max_duration_s:
        raise MediaLimitExceeded(
            f"{name}: duration {out.duration_s:.0f} s is over the limit of {cfg.limits.max_duration_s:.0f} s",
            code=ErrorCode.LIMIT_DURATION,
        )
    if out.width and out.height and out.width * out.height > cfg.limits.max_pixels:
        raise MediaLimitExceeded(
            f"{name}: {out.width}x{out.height} frames are over the limit of {cfg.limits.max_pixels} pixels",
            code=ErrorCode.LIMIT_PIXELS,
        )
    p, limits = out.probe, cfg.limits
    if p is not None and p.has_audio and (p.channels or 0) > limits.max_channels:
        raise MediaLimitExceeded(
            f"{name}: {p.channels} audio channels is over the limit of {limits.max_channels}",
            code=ErrorCode.LIMIT_AUDIO_FORMAT,
        )
    if p is not None and p.has_audio and (p.sample_rate or 0) > limits.max_sample_rate:
        raise MediaLimitExceeded(
            f"{name}: sample rate {p.sample_rate} Hz is over the limit of {limits.max_sample_rate} Hz",
            code=ErrorCode.LIMIT_AUDIO_FORMAT,
        )


def shots_wanted(cfg: PipelineConfig) -> bool:
    """Shot detection runs when asked for, when frames are sampled at scene starts, or shots are the grid."""
    return cfg.video.shots or cfg.video.sampling == "scenes" or cfg.align.grid == "shots"


def _shots(out: Draft, cfg: PipelineConfig) -> None:
    v = cfg.video
    out.shots = detect_shots(
        out.pending.item.path,
        threshold=v.shot_threshold,
        min_shot_s=v.min_shot_s,
        work_size=v.shot_size,
        rotation=out.rotation,
        duration_s=out.duration_s,
        backend=v.backend,
    )


def _video(out: Draft, cfg: PipelineConfig) -> None:
    v = cfg.video
    out.frames = sample_frames(
        out.pending.item.path,
        fps=v.fps,
        max_frames=v.max_frames,
        decode_short_side=v.decode_short_side,
        rotation=out.rotation,
        duration_s=out.duration_s,
        backend=v.backend,
        fallback=True,
        sampling=v.sampling,
        every_k=v.every_k,
        n_frames=v.n_frames,
        scene_times=[s.start_s for s in out.shots or []],
        resize=v.resize,
        box=(v.width, v.height),
        snap=v.snap,
    )
    if out.duration_s is None and len(out.frames.times_s):
        out.duration_s = float(out.frames.times_s[-1]) + 1.0 / cfg.video.fps
        out.flags.append("duration_from_frames")
    if out.frames.synthetic_pts:
        out.flags.append("synthetic_pts")
    if out.frames.decode_errors:
        out.flags.append(f"decode_errors={out.frames.decode_errors}")


def _image(out: Draft, cfg: PipelineConfig) -> None:
    decoded = decode_image(
        out.pending.item.path,
        short_side=cfg.video.decode_short_side,
        max_pixels=cfg.limits.max_pixels,
    )
    out.width, out.height, out.rotation = decoded.width, decoded.height, decoded.rotation
    out.frames = SampledFrames(
        indices=np.zeros(1, dtype=np.int64),
        times_s=np.zeros(1, dtype=np.float64),
        frames=decoded.pixels[None, ...],
        backend="pillow",
    )


def _audio(out: Draft, cfg: PipelineConfig) -> None:
    stream = out.probe.audio_stream_index if out.probe else None
    audio = decode_audio(
        out.pending.item.path,
        sample_rate=cfg.audio.sample_rate,
        max_duration_s=cfg.limits.max_duration_s,
        stream_index=stream,
        channels=cfg.audio.channels,
    )
    if out.kind == "audio" or out.duration_s is None:
        out.duration_s = audio.duration_s
    if audio.decode_errors:  # damaged packets read past: the windows that decoded land
        out.flags.append(f"audio_decode_errors={audio.decode_errors}")
    raw, audio = audio.samples, maybe_denoise(audio, cfg.audio)
    out.audio_samples, out.audio_rate = audio.samples, audio.sample_rate
    out.audio_windows = window_features(
        audio,
        segment_s=cfg.align.segment_s,
        cfg=cfg.audio,
        grid_duration_s=out.duration_s,  # the item's segment grid, so audio rows line up with segments
        max_windows=cfg.align.max_segments,
    )
    bounds = [(w.start_s, w.end_s) for w in out.audio_windows]
    out.audio_columns.update(snr_columns(bounds, raw, out.audio_samples, out.audio_rate, cfg.audio))
    if cfg.audio.denoise:
        out.audio_raw = raw  # speech models hear the recording as it was (gating costs ASR words)
    if any("padded" in w.flags for w in out.audio_windows):
        out.flags.append("audio_padded")


def _flow(out: Draft, cfg: PipelineConfig) -> None:
    assert out.frames is not None
    out.flow = flow_sequence(out.frames, cfg.flow)


def _document(out: Draft, cfg: PipelineConfig) -> None:
    """A whole text file as one untimed segment: decoded (charset recorded), HTML stripped, NFKC,
    within the limit, not blank."""
    path, limit = out.pending.item.path, cfg.limits.max_text_chars
    if (out.pending.n_bytes - 4) // 4 > limit:  # no encoding takes more than 4 bytes a character
        raise MediaLimitExceeded(
            f"{path.name}: {out.pending.n_bytes} bytes is over {limit} characters in any encoding",
            code=ErrorCode.LIMIT_TEXT,
        )
    clean = clean_document(path.read_bytes(), name=path.name, suffix=path.suffix)
    text = clean.text
    if len(text) > limit:
        raise MediaLimitExceeded(
            f"{path.name}: {len(text)} characters is over the limit of {limit}", code=ErrorCode.LIMIT_TEXT
        )
    if not text.strip():  # nothing to analyse or embed: an item with no rows at all is not a success
        raise MediaError(f"{path.name}: no text, only whitespace", code=ErrorCode.TOO_SHORT)
    out.texts = [TextSegment(text=text, start_s=None, end_s=None, source="document", charset=clean.charset)]
    if clean.html:
        out.flags.append("html_stripped")


def _attached_text(out: Draft) -> None:
    """Sidecar captions and manifest text of a media item."""
    item = out.pending.item
    if item.sidecar is not None:
        try:
            out.texts.extend(read_sidecar(item.sidecar))
        except (OSError, MediaError) as err:
            code = err.code if isinstance(err, MediaError) else ErrorCode.TEXT_ENCODING
            raise MediaError(f"sidecar {item.sidecar.name}: {err}", code=code) from err
    if item.manifest_text:
        text = unicodedata.normalize("NFKC", item.manifest_text)
        start, end = manifest_times(item.metadata)
        out.texts.append(TextSegment(text, start, end, "manifest"))


def manifest_times(meta: dict[str, object]) -> tuple[float | None, float | None]:
    """Optional `start_s`/`end_s` (or `start`/`end`) of a manifest caption, in seconds; both or none."""
    raw = [next((meta[k] for k in keys if meta.get(k) is not None), None) for keys in _TIME_KEYS]
    if raw == [None, None]:
        return None, None
    try:
        start, end = (float(v) for v in raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CaptionFormatError(
            f"manifest caption times must be numbers, got {raw[0]!r} and {raw[1]!r}"
        ) from None
    if not (0 <= start <= end) or end == float("inf"):
        raise CaptionFormatError(f"manifest caption times out of order: start {start} s, end {end} s")
    return start, end
