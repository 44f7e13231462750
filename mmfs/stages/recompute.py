"""Per-table recompute: a stale item redoes only its stale tables and keeps the rest from the store.

A config change that touches one modality (the MFCC `n_mels`, say) makes only that modality's rows
and the item's segments stale (`plan.stale_tables`). The run then decodes and embeds only what those
tables need, reads the item's other vectors back from the store to rebuild its segments, and commits
each table's rows with a replace scope (`batch_scopes`) so that rows it no longer produces go in the
same commit. Tables it did not recompute are not written at all: their rows keep version and run id.
This module stays free of the store (the decode workers import it); `kept_rows` reads the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mmfs.transforms.align import AlignInputs

MODALITY_TABLES = ("frames", "flow", "audio", "text")
ALL_MODALITIES = frozenset(MODALITY_TABLES)

# The quarantine stages whose failures belong to each modality table (item-level stages belong to all).
TABLE_STAGES: dict[str, tuple[str, ...]] = {
    "frames": ("frames", "embed_image", "embed_video"),
    "flow": ("flow",),
    "audio": ("audio", "embed_audio", "speech"),  # speech: VAD and pitch (stages/speech.py)
    "text": ("text", "embed_text", "asr"),
}
AUDIO_FLAGS = ("audio_padded",)  # quality flags set by the audio stage; the others come from decoding
# Flags that make a kept item `degraded` (content was lost, not just repaired): damaged audio packets.
DEGRADING_FLAG_PREFIXES = ("audio_decode_errors=",)


def computed_tables(only: Iterable[str] | None) -> frozenset[str]:
    """The modality tables an item recomputes: all of them, or the stale ones."""
    return ALL_MODALITIES if only is None else frozenset(only) & ALL_MODALITIES


def decodes_video(computed: frozenset[str]) -> bool:
    """Frames are decoded when the frames or the flow (computed from those frames) are recomputed."""
    return bool(computed & {"frames", "flow"})


def owned_stages(computed: frozenset[str]) -> frozenset[str]:
    """The quarantine stages a recompute of these tables re-decides."""
    return frozenset(stage for t in computed for stage in TABLE_STAGES[t])


def degrading_flag(flag: str) -> bool:
    """Whether a quality flag says content was lost (the item is then `degraded`, not `ok`)."""
    return flag.startswith(DEGRADING_FLAG_PREFIXES)


def owned_flag(flag: str, computed: frozenset[str]) -> bool:
    """Whether a media quality flag is re-decided by recomputing these tables."""
    if flag in AUDIO_FLAGS or flag.startswith("audio_decode_errors="):
        return "audio" in computed
    return decodes_video(computed)


@dataclass
class StoredItem:
    """What the store already holds of an item that is partly recomputed."""

    duration_s: float | None = None
    language: str | None = None
    language_confidence: float | None = None
    flags: list[str] = field(default_factory=list)
    error_parts: list[str] = field(default_factory=list)
    failed_stages: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)  # kept modality tables the item has rows in
    inputs: AlignInputs = field(default_factory=lambda: AlignInputs(duration_s=None))
    # kept frames' image analysis (`analysis.FrameAnalysis`) and times, for the segments' nsfw/faces
    frame_analysis: Any = None
    frame_times: Any = None


def merge_inputs(fresh: AlignInputs, kept: AlignInputs, computed: frozenset[str]) -> AlignInputs:
    """Align inputs from this run's tables and the store's rows of the tables not recomputed."""
    merged = AlignInputs(duration_s=fresh.duration_s, is_image=fresh.is_image)
    pick = {t: fresh if t in computed else kept for t in MODALITY_TABLES}
    merged.visual, merged.label_vectors = pick["frames"].visual, pick["frames"].label_vectors
    merged.motion = pick["flow"].motion
    merged.video = pick["frames"].video
    merged.audio, merged.text = pick["audio"].audio, pick["text"].text
    return merged
