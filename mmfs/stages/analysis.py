"""Image analysis of an item's frames (or its one image): quality, faces, NSFW and OCR.

The first batch stage, before the encoders, because it decides what they see: frames that fail the
quality checks are dropped when `quality.action` is `drop` (the stage's `Analysed` result holds the
kept frames and flow pairs), and the text read by OCR joins the item's text segments (`source =
"ocr"`), so it is embedded, aligned and searched like a caption.
The models load once per process; everything is off by default except the classical features.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmfs.config import PipelineConfig
from mmfs.encoders.keyed import run_keyed
from mmfs.encoders.models import FaceDetector, NsfwDetector, TextReader, load_model
from mmfs.errors import ConfigError, MmfsError
from mmfs.stages.base import ItemFailure, Resources, StageBase, StageOutput
from mmfs.stages.items import Analysed, Extracted, Item, StageFailure
from mmfs.transforms.image.face_blur import blur_boxes
from mmfs.transforms.image.features import ImageFeatures, QualityThresholds, image_features, quality_flags
from mmfs.transforms.text.captions import TextSegment
from mmfs.transforms.video.types import SampledFrames

OCR_SOURCE = "ocr"


@dataclass
class FrameAnalysis:
    """Per kept frame (same order as `ex.frames`): features, flags, faces, NSFW score, thumbnail pixels."""

    features: list[ImageFeatures | None] = field(default_factory=list)
    flags: list[list[str]] = field(default_factory=list)
    faces: list[list[tuple[float, float, float, float]]] | None = None
    nsfw_scores: list[float] | None = None
    nsfw_threshold: float = 0.5
    blurred: list[np.ndarray | None] = field(default_factory=list)  # thumbnail source when faces blurred
    dropped: int = 0


def check_available(cfg: PipelineConfig) -> None:
    """Fail before any item when a switched-on analysis lacks its package (ConfigError with the fix)."""
    from mmfs.encoders import faces_mtcnn, nsfw_nudenet, ocr_rapid
    from mmfs.encoders.analysis_common import require

    img = cfg.image
    if img.ocr:
        require("rapidocr_onnxruntime", "image.ocr", ocr_rapid.INSTALL)
    if img.faces or img.blur_faces:
        require("facenet_pytorch", "image.faces", faces_mtcnn.INSTALL)
    if img.nsfw:
        require("nudenet", "image.nsfw", nsfw_nudenet.INSTALL)


class AnalysisStage(StageBase):
    """Image analysis over a batch: per item, the frames and flow kept, their analysis, OCR text.

    Failures are recorded at stage `embed_image` (the frames table's model stage) and degrade that
    item only; a configuration error stops the run.
    """

    name = "embed_image"
    timing = "analyse"

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        img = cfg.image
        wanted = (
            ("faces.mtcnn", img.faces or img.blur_faces),
            ("nsfw.nudenet", img.nsfw),
            ("ocr.rapidocr", img.ocr),
        )
        models = [m for m, on in wanted if on]
        self.resources = Resources(models=tuple(models))

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with its `Analysed` result (items without frames pass through)."""
        out: list[Item] = []
        failures: list[ItemFailure] = []
        for i, item in enumerate(batch):
            try:
                analysed = analyse(item.ex, self.cfg)
            except ConfigError:
                raise
            except MmfsError as err:
                failures.append(ItemFailure(i, StageFailure(self.name, err)))
                analysed = None
            out.append(item if analysed is None else item.with_(analysed=analysed))
        return StageOutput(out, failures)


def analyse(ex: Extracted, cfg: PipelineConfig) -> Analysed | None:
    """The configured analyses over an item's frames; None when it has no frames.

    With `quality.action: drop`, frames that fail the quality checks leave the item here, and a flow
    pair that touches one goes with it (flow was computed over every sampled frame), so no flow row
    names a frame the frames table does not hold. The decoded item itself is not changed.
    """
    if ex.frames is None or not len(ex.frames.times_s):
        return None
    img = cfg.image
    result = FrameAnalysis(nsfw_threshold=img.nsfw_threshold)
    frames_kept, flow = ex.frames, ex.flow
    flags: tuple[str, ...] = ()
    if img.features:
        keep = _quality(ex.frames, cfg, result)
        if result.dropped:
            dropped = {int(i) for i in ex.frames.indices[~keep]}
            frames_kept = keep_frames(ex.frames, keep)
            flow = tuple(p for p in ex.flow if not {p.frame_index, p.next_frame_index} & dropped)
            flags = (f"quality_dropped={result.dropped}",)
    frames = list(frames_kept.frames)
    frame_owned = "frames" in ex.computed
    if frame_owned and (img.faces or img.blur_faces) and frames:
        detector = load_model(
            "faces.mtcnn",
            FaceDetector,
            device=cfg.encoders.device,
            min_confidence=img.face_min_confidence,
            min_face_px=img.face_min_px,
        )
        keys = range(len(frames))
        result.faces = run_keyed("faces.mtcnn", list(zip(keys, frames, strict=True)), detector.detect).select(
            keys
        )
        if img.blur_faces:
            result.blurred = [blur_boxes(f, b) for f, b in zip(frames, result.faces, strict=True)]
    if frame_owned and img.nsfw and frames:
        from mmfs.encoders.nsfw_nudenet import nsfw_score

        detector_n = load_model("nsfw.nudenet", NsfwDetector)
        found = run_keyed(
            "nsfw.nudenet", list(enumerate(frames)), lambda px: [nsfw_score(detector_n.detect(f)) for f in px]
        )
        result.nsfw_scores = found.select(range(len(frames)))
    ocr: tuple[TextSegment, ...] = ()
    if img.ocr and "text" in ex.computed and frames:
        ocr = tuple(ocr_segments(ex, frames_kept, cfg))
    return Analysed(frames=frames_kept, flow=flow, analysis=result, ocr=ocr, flags=flags)


def _quality(frames: SampledFrames, cfg: PipelineConfig, result: FrameAnalysis) -> np.ndarray:
    """Features and flags of every frame into `result`; returns which frames are kept."""
    q = cfg.quality
    limits = QualityThresholds(q.min_sharpness, q.min_brightness, q.max_brightness, q.min_contrast)
    features = [image_features(f) for f in frames.frames]
    flags = [quality_flags(f, limits) for f in features]
    keep = np.array([not fl for fl in flags]) if q.action == "drop" else np.ones(len(flags), dtype=bool)
    result.features = [f for f, k in zip(features, keep, strict=True) if k]
    result.flags = [fl for fl, k in zip(flags, keep, strict=True) if k]
    result.dropped = int((~keep).sum())
    return keep


def keep_frames(frames: SampledFrames, keep: np.ndarray) -> SampledFrames:
    """The sampled frames where `keep` is true (every per-frame array of the record is masked)."""
    n = len(frames.times_s)
    masked = {
        f.name: getattr(frames, f.name)[keep]
        for f in dataclasses.fields(frames)
        if isinstance(getattr(frames, f.name), np.ndarray) and len(getattr(frames, f.name)) == n
    }
    return dataclasses.replace(frames, **masked)


def ocr_segments(ex: Extracted, frames: SampledFrames, cfg: PipelineConfig) -> list[TextSegment]:
    """OCR text of the frames as text segments: one per run of consecutive frames showing the same text.

    A video frame at t covers [t, next sampled frame) (the last one: t + 1/fps, within the duration),
    so text stays on the timeline until the next sample shows something else; an image's text is
    untimed (start and end null), like an image's caption.
    """
    from mmfs.encoders.ocr_rapid import join_lines

    engine = load_model("ocr.rapidocr", TextReader, det_side=cfg.image.ocr_det_side)
    least = cfg.image.ocr_min_confidence
    pairs = list(enumerate(frames.frames))
    read = run_keyed("ocr.rapidocr", pairs, lambda px: [join_lines(engine.read(f, least)) for f in px])
    texts = read.select(range(len(pairs)))
    if ex.kind != "video":
        return [TextSegment(t, None, None, OCR_SOURCE) for t in texts if t]
    times = [float(t) for t in frames.times_s]
    last_end = times[-1] + 1.0 / cfg.video.fps
    if ex.duration_s is not None:
        last_end = max(times[-1], min(last_end, ex.duration_s))
    ends = [*times[1:], last_end]
    out: list[TextSegment] = []
    for text, start, end in zip(texts, times, ends, strict=True):
        if not text:
            continue
        prev = out[-1] if out else None
        if prev is not None and prev.text == text and prev.end_s == start:
            out[-1] = TextSegment(text, prev.start_s, end, OCR_SOURCE)
        else:
            out.append(TextSegment(text, start, end, OCR_SOURCE))
    return out


def frame_columns(analysis: FrameAnalysis | None, i: int) -> dict[str, Any]:
    """The analysis columns of frame row `i` (all null when the item was not analysed)."""
    if analysis is None:
        return {}
    row: dict[str, Any] = {}
    feats = analysis.features[i] if i < len(analysis.features) else None
    if feats is not None:
        row.update(
            color_hist=np.asarray(feats.color_hist, dtype=np.float32),
            edge_density=feats.edge_density,
            sharpness=feats.sharpness,
            brightness=feats.brightness,
            contrast=feats.contrast,
            quality_flags=analysis.flags[i],
        )
    if analysis.faces is not None:
        row.update(n_faces=len(analysis.faces[i]), face_boxes=[list(b) for b in analysis.faces[i]])
    if analysis.nsfw_scores is not None:
        score = analysis.nsfw_scores[i]
        row.update(nsfw_score=score, nsfw=score >= analysis.nsfw_threshold)
    return row


def thumbnail_source(analysis: FrameAnalysis | None, frame: np.ndarray, i: int) -> np.ndarray:
    """The pixels a frame's stored thumbnail is made from: faces blurred when configured."""
    if analysis is None or i >= len(analysis.blurred) or analysis.blurred[i] is None:
        return frame
    return analysis.blurred[i]  # type: ignore[return-value]


STORED_ANALYSIS_COLUMNS = ("face_boxes", "nsfw_score")  # what segments need of kept frames rows


def analysis_from_rows(rows: list[dict[str, Any]]) -> FrameAnalysis | None:
    """The faces and NSFW scores of stored frames rows (sorted by time), as a FrameAnalysis."""
    result = FrameAnalysis()
    if rows and all(r.get("face_boxes") is not None for r in rows):
        result.faces = [[tuple(b) for b in r["face_boxes"]] for r in rows]
    if rows and all(r.get("nsfw_score") is not None for r in rows):
        result.nsfw_scores = [float(r["nsfw_score"]) for r in rows]
    return result if result.faces is not None or result.nsfw_scores is not None else None


def segment_analysis(
    item: Item, kept: Any, threshold: float
) -> tuple[FrameAnalysis | None, np.ndarray | None]:
    """The frame analysis and frame times a segment row summarises: this run's, or, when the frames
    table was not recomputed, the stored frames' (`kept`, a recompute.StoredItem)."""
    if kept is not None and "frames" not in item.ex.computed:
        if kept.frame_analysis is None:
            return None, None
        return dataclasses.replace(kept.frame_analysis, nsfw_threshold=threshold), kept.frame_times
    frames = item.frames
    return item.analysis, (frames.times_s if frames is not None else None)


def segment_columns(
    analysis: FrameAnalysis | None,
    times_s: np.ndarray | None,
    start: float | None,
    end: float | None,
    inclusive: bool,
) -> dict[str, Any]:
    """A segment's `nsfw` (any frame in it), `nsfw_score` and `faces` (their maxima) from its frames."""
    if analysis is None or times_s is None or start is None or end is None:
        return {}
    upper = times_s <= end if inclusive else times_s < end
    idx = np.flatnonzero((times_s >= start) & upper)
    if not len(idx):
        return {}
    row: dict[str, Any] = {}
    if analysis.nsfw_scores is not None:
        score = max(analysis.nsfw_scores[i] for i in idx)
        row.update(nsfw_score=score, nsfw=score >= analysis.nsfw_threshold)
    if analysis.faces is not None:
        row["faces"] = max(len(analysis.faces[i]) for i in idx)
    return row
