"""The rows stage: items after the batch stages become Arrow rows for each table (segments from the
align stage's grid), stamped with each table's `feature_version` (`stages/versions.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from mmfs.config import PipelineConfig
from mmfs.schemas.rows import rows_to_table
from mmfs.schemas.tables import IMAGE_ANALYSIS_FIELDS, IMAGE_CUE_FIELDS, TABLES
from mmfs.stages.analysis import frame_columns, segment_analysis, segment_columns, thumbnail_source
from mmfs.stages.bridge import hint_columns
from mmfs.stages.fusion import Fusion
from mmfs.stages.items import Extracted, Item, StageFailure
from mmfs.stages.recompute import StoredItem, degrading_flag, owned_flag, owned_stages
from mmfs.stages.versions import segments_version
from mmfs.transforms.image.pixels import thumbnail_jpeg
from mmfs.transforms.text.pii import placeholder_counts
from mmfs.transforms.video.flow_types import FLOW_MOTION_COLUMNS  # numpy only: not OpenCV or numba

# Columns a builder writes as nulls when their stage is off, so every row names every column of its
# table (tests/unit/test_row_codecs.py); the vocabulary step fills the text table's own later.
FRAME_NULLS = dict.fromkeys(f.name for f in (*IMAGE_ANALYSIS_FIELDS, *IMAGE_CUE_FIELDS))
AUDIO_NULLS = dict.fromkeys(("snr_db", "snr_db_denoised", "speech_prob", "f0_hz", "voiced_frac"))
TEXT_NULLS = dict.fromkeys(("bow_indices", "bow_counts", "tfidf", "vocab_version"))
SEGMENT_NULLS = dict.fromkeys(("nsfw", "nsfw_score", "faces", "joint", "joint_mask", "joint_learned"))
MEDIA_NULLS = dict.fromkeys(("row_versions", "uri_stats"))  # set at commit (batch.with_row_versions)

TEXT_SOURCE_ORDER = ("document", "manifest", "caption", "asr", "ocr")  # whose language is the item's


def main_language(item: Item | None) -> str | None:
    """The item's language: that of its first text source in `TEXT_SOURCE_ORDER` that has one."""
    if item is None:
        return None
    found = (item.languages.get(src) for src in TEXT_SOURCE_ORDER)
    return next((lang for lang in found if lang), None)


def main_language_confidence(item: Item | None) -> float | None:
    """How sure the item's language tag is: the confidence of the source `main_language` took."""
    if item is None:
        return None
    src = next((s for s in TEXT_SOURCE_ORDER if item.languages.get(s)), None)
    return item.language_confidence.get(src) if src is not None else None


class RowBuilder:
    """Accumulates the rows of one batch, table by table, stamped with run id and versions."""

    def __init__(
        self,
        cfg: PipelineConfig,
        run_id: str,
        versions: dict[str, str],
        stored: dict[str, StoredItem] | None = None,
        fusion: Fusion | None = None,
    ) -> None:
        self.cfg, self.run_id, self.versions = cfg, run_id, versions
        self.fusion = fusion  # makes segments.joint (None: only failures are laid out)
        self.stored = stored or {}  # what the store keeps of partly recomputed items
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES if t != "runs"}
        self.now = datetime.now(UTC)

    def _add(self, table: str, row: dict[str, Any], version: str | None = None) -> None:
        row["feature_version"] = version or self.versions[table]
        row["run_id"] = self.run_id
        self.rows[table].append(row)

    def tables(self, schemas: dict[str, pa.Schema]) -> dict[str, pa.Table]:
        """The batch as Arrow tables in the store's schemas."""
        return {name: rows_to_table(rows, schemas[name], name) for name, rows in self.rows.items()}

    def add_item(self, ex: Extracted, item: Item | None) -> None:
        """All rows of one item: media, its modality tables, segments, and its failures.

        `item` is the item after the batch stages (None when decoding failed: only its failure rows
        and its `failed` media row are made).
        """
        kept = self.stored.get(ex.pending.media_id)
        if item is not None:
            if "frames" in ex.computed:
                self._frames(item)
            self._flow(item)
            self._shots(ex)
            self._audio(item)
            self._text(item)
            if self.cfg.align.segments:
                self._segments(item, kept)
        failures = item.all_failures if item is not None else ex.failures
        detail = failure_detail(ex, item.flags if item is not None else ex.flags)
        for failure in failures:
            self.add_failure(ex.pending.media_id, ex.pending.item.uri, failure, detail)
        self._media(ex, item, kept)

    def add_failure(
        self, media_id: str, uri: str, failure: StageFailure, detail: dict[str, Any] | None = None
    ) -> None:
        """One quarantine row; `detail` is what was known about the item (probe data) when it failed."""
        err = failure.error
        self._add(
            "quarantine",
            {
                "media_id": media_id,
                "stage": failure.stage,
                "uri": uri,
                "error_code": int(err.code),
                "error_name": err.code.name,
                "error_type": type(err).__name__,
                "message": err.message[:2048],
                "retryable": err.retryable,
                "attempts": 1,
                "first_seen": self.now,
                "last_seen": self.now,
                "detail": json.dumps(detail, sort_keys=True, default=str) if detail else None,
            },
        )

    def add_unread(self, key: str, uri: str, failure: StageFailure, n_bytes: int | None = None) -> None:
        """A `failed` media row for an input that was never hashed (empty, unreadable, over a limit).

        Its key is the quarantine row's (`uri:<uri>`): every failure has both rows, so `mmfs run`,
        `mmfs report` and `mmfs status` count the same failures.
        """
        self._add(
            "media",
            {
                "media_id": key,
                "uri": uri,
                "uris": [uri],
                "kind": "unknown",
                "bytes": n_bytes,
                "status": "failed",
                "error": f"{failure.stage}: {failure.error}",
                "quality_flags": [],
                "ingested_at": self.now,
                **MEDIA_NULLS,
            },
        )

    def _media(self, ex: Extracted, it: Item | None, kept: StoredItem | None = None) -> None:
        p, item = ex.probe, ex.pending.item
        language, confidence = main_language(it), main_language_confidence(it)
        parts = [f"{f.stage}: {f.error}" for f in (it.all_failures if it is not None else ex.failures)]
        status = it.status if it is not None else ex.status
        flags = list(it.flags if it is not None else ex.flags)
        duration = it.aligned.duration_s if it is not None and it.aligned is not None else ex.duration_s
        if kept is not None and not ex.failed:  # the failures and flags of tables not recomputed stay
            owned = owned_stages(ex.computed)
            old = [s for s in kept.failed_stages if s not in owned]
            parts += [e for e in kept.error_parts if e.split(":", 1)[0] in old]
            flags += [f for f in kept.flags if not owned_flag(f, ex.computed) and f not in flags]
            lost = old or any(map(degrading_flag, flags))
            status = "degraded" if lost and status == "ok" else status
        errors = "; ".join(parts)
        self._add(
            "media",
            {
                "media_id": ex.pending.media_id,
                "uri": item.uri,
                "uris": ex.pending.uris,
                "kind": ex.kind,
                "container": p.container if p else None,
                "bytes": ex.pending.n_bytes,
                "duration_s": duration,
                "width": ex.width,
                "height": ex.height,
                "fps": p.fps if p else None,
                "n_frames": p.n_frames if p else None,
                "rotation": ex.rotation,
                "sample_rate": p.sample_rate if p else (ex.audio_rate or None),
                "channels": p.channels if p else None,
                "has_video": bool(p.has_video) if p else ex.kind == "image",
                "has_audio": bool(p.has_audio) if p else False,
                "status": status,
                "error": errors or None,
                "quality_flags": flags,
                "metadata": json.dumps(item.metadata, default=str) if item.metadata else None,
                "ingested_at": self.now,
                "process_s": round(sum(ex.stage_seconds.values()), 4),
                "decoder": ex.frames.backend if ex.frames is not None else None,
                "language": language if language is not None else (kept.language if kept else None),
                "language_confidence": (
                    confidence if language is not None else (kept.language_confidence if kept else None)
                ),
                **MEDIA_NULLS,
            },
        )

    def _frames(self, it: Item) -> None:
        frames, v = it.frames, it.vectors
        if frames is None:
            return
        img = self.cfg.image
        for i, (index, t) in enumerate(zip(frames.indices, frames.times_s, strict=True)):
            pixels = thumbnail_source(it.analysis, frames.frames[i], i)
            labels = v.frame_labels[i] if v.frame_labels else []
            self._add(
                "frames",
                {
                    "media_id": it.ex.pending.media_id,
                    "frame_index": int(index),
                    "t_s": float(t),
                    "width": it.ex.width,
                    "height": it.ex.height,
                    "thumbnail": thumbnail_jpeg(
                        pixels, longest_side=img.thumbnail_size, quality=img.thumbnail_quality
                    )
                    if img.thumbnails
                    else None,
                    "labels": [name for name, _ in labels],
                    "label_scores": [float(score) for _, score in labels],
                    "embedding": _row(v.frame, i),
                    "label_embedding": _row(v.label, i),
                    **FRAME_NULLS,
                    **frame_columns(it.analysis, i),
                    **hint_columns(it, i),
                },
            )

    def _flow(self, it: Item) -> None:
        if not it.flow:
            return
        for pair in it.flow:
            self._add(
                "flow",
                {
                    "media_id": it.media_id,
                    "frame_index": pair.frame_index,
                    "next_frame_index": pair.next_frame_index,
                    "t_s": pair.t_s,
                    "dt_s": pair.dt_s,
                    "mean_mag": pair.mean_mag,
                    "median_mag": pair.median_mag,
                    "p95_mag": pair.p95_mag,
                    "max_mag": pair.max_mag,
                    "mean_dx": pair.mean_dx,
                    "mean_dy": pair.mean_dy,
                    "orient_hist": pair.orient_hist.astype(np.float32, copy=False),
                    "moving_frac": pair.moving_frac,
                    "field": pair.field.astype("<f2").tobytes(),
                    "field_shape": list(pair.field.shape),
                    "method": self.cfg.flow.method,
                    **{name: getattr(pair, name) for name in FLOW_MOTION_COLUMNS},
                },
            )

    def _shots(self, ex: Extracted) -> None:
        for shot in ex.shots or []:
            self._add(
                "shots",
                {
                    "media_id": ex.pending.media_id,
                    "shot_index": shot.shot_index,
                    "start_s": shot.start_s,
                    "end_s": shot.end_s,
                    "start_frame": shot.start_frame,
                    "cut_score": shot.cut_score,
                },
            )

    def _audio(self, it: Item) -> None:
        vectors, columns = it.vectors.audio, it.audio_columns
        for i, w in enumerate(it.ex.audio_windows):
            vec = vectors[i] if i < len(vectors) else None
            self._add(
                "audio",
                {
                    "media_id": it.ex.pending.media_id,
                    "window_index": w.window_index,
                    "start_s": w.start_s,
                    "end_s": w.end_s,
                    "n_frames": int(w.log_mel.shape[1]),
                    "log_mel": w.log_mel.astype(np.float32, copy=False),
                    "mfcc": w.mfcc.astype(np.float32, copy=False),
                    "rms": float(w.rms),
                    "flags": list(w.flags),
                    "embedding": vec,
                    **w.columns(),  # deltas, spectra, spectral statistics, per-channel features
                    **AUDIO_NULLS,
                    **{name: values[i] for name, values in columns.items()},  # snr_db, speech.py
                },
            )

    def _text(self, it: Item) -> None:
        redacted, v = self.cfg.text.redact_pii, it.vectors
        for i, seg in enumerate(it.texts):
            analysis = v.text_analyses[i] if i < len(v.text_analyses) else None
            entities = analysis.entities if analysis else None
            self._add(
                "text",
                {
                    "media_id": it.ex.pending.media_id,
                    "segment_index": i,
                    "source": seg.source,
                    "start_s": seg.start_s,
                    "end_s": seg.end_s,
                    "text": seg.text,
                    "tokens": analysis.tokens if analysis else None,
                    "lemmas": analysis.lemmas if analysis else None,
                    "stems": analysis.stems if analysis else None,
                    "is_stop": analysis.is_stop if analysis else None,
                    "embedding": _row(v.text, i),
                    "charset": seg.charset,
                    "language": it.languages.get(seg.source),
                    "pos": analysis.pos if analysis else None,
                    "entities": None if entities is None else [e.as_row() for e in entities],
                    "pii_counts": _pii_counts(seg.text) if redacted else None,
                    **TEXT_NULLS,
                },
            )

    def _segments(self, it: Item, kept: StoredItem | None = None) -> None:
        aligned = it.aligned
        if aligned is None:  # the align stage failed for this item: its failure row says why
            return
        version = segments_version(self.versions, aligned.tables)
        analysis, times = segment_analysis(it, kept, self.cfg.image.nsfw_threshold)
        segs = aligned.segments
        for seg in segs:
            row = {
                "media_id": it.media_id,
                "segment_index": seg.segment_index,
                "start_s": seg.start_s,
                "end_s": seg.end_s,
                "kind": it.ex.kind,
                "modalities": seg.modalities,
                "transcript": seg.transcript or None,
                "label_text": seg.label_text or None,
                **SEGMENT_NULLS,
                **segment_columns(analysis, times, seg.start_s, seg.end_s, seg is segs[-1]),
            }
            for name, vec in seg.vectors.items():
                if name != "video" or self.cfg.encoders.video is not None:  # its column exists only then
                    row[name] = vec
            if self.fusion is not None:
                joint, mask, learned = self.fusion.joint(seg.vectors)
                row["joint"], row["joint_mask"], row["joint_learned"] = joint, mask, learned
            self._add("segments", row, version)


def failure_detail(ex: Extracted, flags: Iterable[str] = ()) -> dict[str, Any]:
    """What the probe saw of a failed or degraded item: enough to tell why without the file.

    Deterministic (no timings: those are in `media.process_s`), so a re-run writes the same row.
    """
    detail: dict[str, Any] = {"kind": ex.kind, "bytes": ex.pending.n_bytes, "flags": list(flags)}
    p = ex.probe
    if p is not None:
        detail.update(
            container=p.container,
            duration_s=p.duration_s,
            video_codec=p.video_codec,
            width=p.width,
            height=p.height,
            fps=p.fps,
            rotation=p.rotation,
            audio_codec=p.audio_codec,
            sample_rate=p.sample_rate,
            channels=p.channels,
        )
    return {k: v for k, v in detail.items() if v not in (None, [], {})}


def _pii_counts(text: str) -> dict[str, int]:
    """The `pii_counts` struct of a redacted row: placeholders of each type in its text."""
    return {kind.lower(): n for kind, n in placeholder_counts(text).items()}


def _row(matrix: np.ndarray | None, i: int) -> np.ndarray | None:
    """Row `i` of a per-item matrix (None past its end: the encoder did not reach it)."""
    if matrix is None or i >= len(matrix):
        return None
    return matrix[i]
