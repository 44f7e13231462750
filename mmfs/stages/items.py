"""The item model every stage shares: what is pending, what each stage produced, why a stage failed.

Every record here is frozen. Decoding makes an `Extracted`; each batch stage then returns a new `Item`
carrying its own result beside the earlier ones (`dataclasses.replace`), and never edits what an
earlier stage produced. So re-running a stage over the same items (the per-item retry after a batch
failed, a retried Ray task or Beam bundle) gives the same items, whatever ran before. Kept apart
from the stages themselves so that any stage and any runner can name these types without importing
a stage: no stage module imports another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmfs.errors import MmfsError
from mmfs.stages.recompute import computed_tables, degrading_flag

if TYPE_CHECKING:  # annotations only: the planner imports these types without the decoders behind them
    from mmfs.media.probe_info import ProbeInfo
    from mmfs.transforms.align import Segment
    from mmfs.transforms.audio.window_types import AudioWindow
    from mmfs.transforms.text.captions import TextSegment
    from mmfs.transforms.text.types import TextAnalysis
    from mmfs.transforms.video.flow_types import FlowPair
    from mmfs.transforms.video.frames import SampledFrames
    from mmfs.transforms.video.shots import Shot

__all__ = [
    "Aligned",
    "Analysed",
    "Extracted",
    "Heard",
    "Item",
    "PendingItem",
    "PreparedText",
    "SourceItem",
    "StageFailure",
    "Vectors",
]

ITEM_STAGES = ("read", "probe", "decode")  # a failure at one of these: nothing usable came out


@dataclass(frozen=True)
class SourceItem:
    """One input to the pipeline: a local file (or an object, `uri` s3://…) plus what a manifest or
    sidecar said about it. An object's `path` is its key until `remote.local_copy` fetches it."""

    path: Path
    uri: str
    sidecar: Path | None = None
    manifest_text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    size: int | None = None  # known from the listing for objects; local files are stat'ed when hashed
    sidecar_uri: str | None = None  # an object's sidecar, fetched beside it


@dataclass(frozen=True)
class StageFailure:
    """Why a stage failed for an item: becomes one `quarantine` row."""

    stage: str
    error: MmfsError


@dataclass(frozen=True)
class PendingItem:
    """A unique item to process: its content hash and every uri that had these bytes."""

    media_id: str
    item: SourceItem
    uris: list[str]
    n_bytes: int
    only: tuple[str, ...] | None = None  # a stale item's tables to recompute; None: everything


@dataclass(frozen=True)
class Extracted:
    """What the decode stage produced for one item, before any model runs (see stages: decode)."""

    pending: PendingItem
    kind: str = "unknown"
    probe: ProbeInfo | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    frames: SampledFrames | None = None
    flow: tuple[FlowPair, ...] = ()
    shots: tuple[Shot, ...] | None = None  # None: shot detection did not run for this item
    audio_windows: tuple[AudioWindow, ...] = ()
    audio_samples: np.ndarray | None = None
    audio_rate: int = 0
    audio_columns: Mapping[str, list[Any]] = field(default_factory=dict)  # per-window (snr_db, ...)
    audio_raw: np.ndarray | None = None  # the samples before audio.denoise, when it is on
    texts: tuple[TextSegment, ...] = ()
    failures: tuple[StageFailure, ...] = ()
    flags: tuple[str, ...] = ()
    stage_seconds: Mapping[str, float] = field(default_factory=dict)

    @property
    def computed(self) -> frozenset[str]:
        """The modality tables this extraction produces rows for (all, or a stale item's stale ones)."""
        return computed_tables(self.pending.only)

    @property
    def failed(self) -> bool:
        """True when nothing usable came out (the item-level stage failed)."""
        return any(f.stage in ITEM_STAGES for f in self.failures)

    @property
    def status(self) -> str:
        """`ok`, `degraded` (a modality failed, or lost content: damaged audio packets) or `failed`."""
        if self.failed:
            return "failed"
        return "degraded" if self.failures or any(map(degrading_flag, self.flags)) else "ok"


@dataclass(frozen=True)
class Analysed:
    """The image-analysis stage's result: the frames and flow pairs kept, their analysis, OCR text."""

    frames: SampledFrames | None
    flow: tuple[FlowPair, ...]
    analysis: Any = None  # a FrameAnalysis (stages/analysis.py); None: not analysed
    ocr: tuple[TextSegment, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Heard:
    """The speech stage's result: per-window columns (speech_prob, f0_hz, ...) and the transcript."""

    columns: Mapping[str, list[Any]] = field(default_factory=dict)
    transcript: tuple[TextSegment, ...] = ()
    vad_chunks: np.ndarray | None = None  # the VAD's probability per chunk (the utterances come from it)


@dataclass(frozen=True)
class PreparedText:
    """The text stage's result: the item's final segments (redacted, chunked) and their languages."""

    texts: tuple[TextSegment, ...]
    languages: Mapping[str, str | None] = field(default_factory=dict)  # per text source
    language_confidence: Mapping[str, float | None] = field(default_factory=dict)  # of each source's tag


@dataclass(frozen=True)
class Vectors:
    """What the encode stages produced for one item (rows of each matrix follow the item's frames,
    texts or windows in order); each encoder adds its own fields with `replace`."""

    frame: np.ndarray | None = None
    frame_labels: tuple[list[tuple[str, float]], ...] = ()
    label: np.ndarray | None = None
    frame_hints: tuple[Any, ...] = ()  # label bridge: cues per frame (encoders.label_bridge.FrameHints)
    bridge_texts: tuple[str, ...] = ()  # label bridge: its words per frame
    text: np.ndarray | None = None
    text_analyses: tuple[TextAnalysis, ...] = ()  # tokens, lemmas, ... of each text segment
    audio: tuple[np.ndarray | None, ...] = ()
    clip_times: np.ndarray | None = None  # video encoder: each clip's middle time, and its vector
    clip: np.ndarray | None = None


@dataclass(frozen=True)
class Aligned:
    """The align stage's result: the item's segments on its grid, and what the grid was made from."""

    segments: tuple[Segment, ...]
    duration_s: float | None  # the grid's duration (a partly recomputed item keeps its stored one)
    tables: frozenset[str]  # the modality tables the segments draw on (they decide its version)


@dataclass(frozen=True)
class Item:
    """One item between the batch stages: the decode result and each later stage's own result."""

    ex: Extracted
    analysed: Analysed | None = None
    heard: Heard | None = None
    prepared: PreparedText | None = None
    vectors: Vectors = Vectors()
    aligned: Aligned | None = None  # the align stage's segments (None: not aligned)
    failures: tuple[StageFailure, ...] = ()  # of the batch stages

    def with_(self, **changes: Any) -> Item:
        """A copy with some stage results set (the stage's own; earlier ones are never edited)."""
        return replace(self, **changes)

    def failing(self, failure: StageFailure) -> Item:
        """A copy that records one more failure of a batch stage."""
        return replace(self, failures=(*self.failures, failure))

    @property
    def media_id(self) -> str:
        """The item's content hash."""
        return self.ex.pending.media_id

    @property
    def frames(self) -> SampledFrames | None:
        """The frames that go on: the ones image analysis kept, or every decoded one."""
        return self.analysed.frames if self.analysed is not None else self.ex.frames

    @property
    def flow(self) -> tuple[FlowPair, ...]:
        """The flow pairs that go on (none touching a dropped frame)."""
        return self.analysed.flow if self.analysed is not None else self.ex.flow

    @property
    def analysis(self) -> Any:
        """The frame analysis (a FrameAnalysis), or None."""
        return self.analysed.analysis if self.analysed is not None else None

    @property
    def texts(self) -> tuple[TextSegment, ...]:
        """The text segments: prepared ones once the text stage ran, else decoded + OCR + transcript."""
        if self.prepared is not None:
            return self.prepared.texts
        ocr = self.analysed.ocr if self.analysed is not None else ()
        heard = self.heard.transcript if self.heard is not None else ()
        return (*self.ex.texts, *ocr, *heard)

    @property
    def audio_columns(self) -> dict[str, list[Any]]:
        """Per-window audio columns of decoding and of the speech stage."""
        heard = self.heard.columns if self.heard is not None else {}
        return {**self.ex.audio_columns, **heard}

    @property
    def languages(self) -> Mapping[str, str | None]:
        """The language of each text source (empty before the text stage)."""
        return self.prepared.languages if self.prepared is not None else {}

    @property
    def language_confidence(self) -> Mapping[str, float | None]:
        """How sure each text source's language tag is (empty before the text stage)."""
        return self.prepared.language_confidence if self.prepared is not None else {}

    @property
    def all_failures(self) -> tuple[StageFailure, ...]:
        """Every failure: decoding's, then the batch stages'."""
        return (*self.ex.failures, *self.failures)

    @property
    def flags(self) -> tuple[str, ...]:
        """Quality flags of decoding and image analysis."""
        return (*self.ex.flags, *(self.analysed.flags if self.analysed is not None else ()))

    @property
    def status(self) -> str:
        """`ok`, `degraded` (a modality or a model failed, or content was lost) or `failed`."""
        if self.ex.failed:
            return "failed"
        return "degraded" if self.all_failures or any(map(degrading_flag, self.flags)) else "ok"
