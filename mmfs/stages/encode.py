"""The encode stages, and `Enricher`: the batch stages of a run in order, with their models.

Batching across items is what keeps the models busy: the frames of eight videos go through the
image encoder together, every caption and label line through the text encoder together. Each encode
stage returns the items with its own vectors added (`Item.vectors`), and is applied like every other
stage (`pipelines/stage.apply_stage`): a batch that fails runs again item by item, so one poison
input (a frame that makes a NaN, a text the model rejects) degrades its own item only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from mmfs.config import PipelineConfig
from mmfs.encoders import get_cached
from mmfs.encoders.keyed import Keyed, run_keyed, run_keyed_columns
from mmfs.encoders.registry import import_plugins
from mmfs.stages.align import AlignStage
from mmfs.stages.analysis import AnalysisStage, check_available
from mmfs.stages.base import Resources, Stage, StageBase, StageOutput, StageTimes, apply_stages
from mmfs.stages.bridge import bridge_batch
from mmfs.stages.fusion import Fusion
from mmfs.stages.items import Extracted, Item
from mmfs.stages.model_meta import ModelMeta, video_options
from mmfs.stages.recompute import StoredItem
from mmfs.stages.speech import speech_stages
from mmfs.stages.text import TextStage
from mmfs.transforms.text.tokens import TextAnalyzer
from mmfs.transforms.video.action_pooling import window_groups


class Models:
    """The configured encoders of a run, each loaded once per process on first use."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg

    def encoder(self, modality: str) -> Any:
        """The configured encoder of a modality (`encoders.<modality>`); None when switched off."""
        enc = self.cfg.encoders
        name = getattr(enc, modality)
        if name is None:  # encoders.text: null
            return None
        return get_cached(
            name,
            device=enc.device,
            batch_size=enc.batch_size,
            threads=enc.threads,
            options=enc.options(name),
            cpu_engine=enc.cpu_engine,
        )

    def video(self) -> Any:
        """The configured clip encoder (`encoders.video`)."""
        e = self.cfg.encoders
        assert e.video is not None, "the video stage runs only with encoders.video set"
        options = video_options(self.cfg)
        return get_cached(
            e.video,
            device=e.device,
            batch_size=e.batch_size,
            threads=e.threads,
            options=options,
            cpu_engine=e.cpu_engine,
        )


class EmbedImage(StageBase):
    """Frame vectors and labels; label vectors from CLIP's own text space or the label bridge."""

    name, timing = "embed_image", "embed"

    def __init__(self, cfg: PipelineConfig, models: Models, meta: ModelMeta) -> None:
        self.cfg, self.models, self.shared = cfg, models, meta.shared_space()
        text = cfg.encoders.text if cfg.image.labels and not self.shared else None  # the label bridge's
        self.resources = Resources(models=(cfg.encoders.image, *([text] if text else [])))

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item whose frames are recomputed gets frame, label and bridge vectors."""
        owners = [
            i
            for i, it in enumerate(
                batch
            )  # frames decoded only for a stale item's flow are not embedded again
            if it.frames is not None and len(it.frames.times_s) and "frames" in it.ex.computed
        ]
        if not owners:
            return StageOutput(list(batch))
        items = [batch[i] for i in owners]
        keys = [key for it in items for key in _frame_keys(it)]
        pixels = [f for it in items if it.frames is not None for f in it.frames.frames]
        pairs = list(zip(keys, pixels, strict=True))
        image, top_k = self.models.encoder("image"), self.cfg.image.top_labels
        name = self.cfg.encoders.image
        hints: Keyed[Any, Any] | None = None
        words: Keyed[Any, Any] | None = None
        labels: Keyed[Any, Any] | None = None
        label_vectors: Keyed[Any, Any] | None = None
        if not self.cfg.image.labels:  # image.labels off: the features only, no classifier, no label text
            vectors = run_keyed(name, pairs, image.embed)
        elif self.shared:  # the frame's own vector is already in the text space (CLIP)
            vectors, labels = run_keyed_columns(
                name, pairs, lambda px: image.embed_and_classify(px, top_k=top_k)
            )
            label_vectors = vectors
        elif self.cfg.encoders.text is None:  # labels as words; no text encoder to embed them
            vectors, labels = run_keyed_columns(
                name, pairs, lambda px: image.embed_and_classify(px, top_k=top_k)
            )
        else:  # the label bridge: class words weighted by probability, plus pixel cues (stages/bridge)
            vectors, labels, probs = run_keyed_columns(
                name, pairs, lambda px: image.embed_classify_probabilities(px, top_k=top_k)
            )
            bridged, hint_list, word_list = bridge_batch(items, probs.rows(keys), self.models.encoder("text"))
            label_vectors, hints, words = Keyed(keys, bridged), Keyed(keys, hint_list), Keyed(keys, word_list)
        out = list(batch)
        for i, it in zip(owners, items, strict=True):
            mine = _frame_keys(it)
            found = replace(
                it.vectors,
                frame=vectors.rows(mine),
                frame_labels=tuple(labels.select(mine)) if labels is not None else (),
                label=None if label_vectors is None else label_vectors.rows(mine),
                frame_hints=tuple(hints.select(mine)) if hints is not None else (),
                bridge_texts=tuple(words.select(mine)) if words is not None else (),
            )
            out[i] = it.with_(vectors=found)
        return StageOutput(out)


def _frame_keys(it: Item) -> list[tuple[str, int]]:
    """The keys of an item's sampled frames in model calls: its media id and each frame's position."""
    n = len(it.frames.times_s) if it.frames is not None else 0
    return [(it.media_id, k) for k in range(n)]


class EmbedVideo(StageBase):
    """Clip vectors of each video's sampled frames, one clip per `align.segment_s` window."""

    name, timing = "embed_video", "embed"

    def __init__(self, cfg: PipelineConfig, models: Models) -> None:
        self.cfg, self.models = cfg, models
        self.resources = Resources(models=(cfg.encoders.video or "",))

    def run(self, batch: list[Item]) -> StageOutput:
        """Each video whose frames are recomputed gets its clips' times and vectors."""
        jobs: list[tuple[int, list[float]]] = []
        pairs: list[tuple[tuple[str, int], np.ndarray]] = []
        for i, it in enumerate(batch):
            frames = it.frames
            if it.ex.kind != "video" or frames is None or "frames" not in it.ex.computed:
                continue
            groups = window_groups(frames.times_s, self.cfg.align.segment_s)
            pairs += [((it.media_id, k), frames.frames[idx]) for k, (idx, _) in enumerate(groups)]
            jobs.append((i, [t for _, t in groups]))
        if not pairs:
            return StageOutput(list(batch))
        vectors = run_keyed(self.cfg.encoders.video or "", pairs, self.models.video().embed)
        out = list(batch)
        for i, times in jobs:
            mine = [(out[i].media_id, k) for k in range(len(times))]
            found = replace(out[i].vectors, clip_times=np.array(times), clip=vectors.rows(mine))
            out[i] = out[i].with_(vectors=found)
        return StageOutput(out)


class EmbedText(StageBase):
    """Text analysis (tokens, lemmas, stems, POS, entities) and text vectors of every segment."""

    name, timing = "embed_text", "embed"

    def __init__(self, cfg: PipelineConfig, models: Models, analyzer: TextAnalyzer) -> None:
        self.cfg, self.models, self.analyzer = cfg, models, analyzer
        self.resources = Resources(models=(*([cfg.encoders.text] if cfg.encoders.text else []), "spacy"))

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with text gets its segments' analyses and vectors."""
        owners = [i for i, it in enumerate(batch) if it.texts]
        limit = self.cfg.text.max_segment_chars
        pairs = [
            ((batch[i].media_id, k), seg.text[:limit]) for i in owners for k, seg in enumerate(batch[i].texts)
        ]
        if not pairs:
            return StageOutput(list(batch))
        analyses = run_keyed("text analysis", pairs, self.analyzer.analyze)
        encoder = self.models.encoder("text")  # None: encoders.text off, the rows keep a null embedding
        vectors = (
            run_keyed(self.cfg.encoders.text or "", pairs, encoder.embed) if encoder is not None else None
        )
        out = list(batch)
        for i in owners:
            mine = [(out[i].media_id, k) for k in range(len(out[i].texts))]
            found = replace(
                out[i].vectors,
                text=None if vectors is None else vectors.rows(mine),
                text_analyses=tuple(analyses.select(mine)),
            )
            out[i] = out[i].with_(vectors=found)
        return StageOutput(out)


class EmbedAudio(StageBase):
    """A vector per audio window loud enough to embed (`audio.embed_min_rms`); None for the others."""

    name, timing = "embed_audio", "embed"

    def __init__(self, cfg: PipelineConfig, models: Models) -> None:
        self.cfg, self.models = cfg, models
        self.resources = Resources(models=(cfg.encoders.audio,))

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with decoded audio gets one entry per window."""
        pairs: list[tuple[tuple[str, int], np.ndarray]] = []
        slots: dict[int, list[np.ndarray | None]] = {}
        for i, it in enumerate(batch):
            ex = it.ex
            if ex.audio_samples is None:
                continue
            slots[i] = [None] * len(ex.audio_windows)
            for k, window in enumerate(ex.audio_windows):
                if window.rms >= self.cfg.audio.embed_min_rms:
                    lo, hi = round(window.start_s * ex.audio_rate), round(window.end_s * ex.audio_rate)
                    pairs.append(((it.media_id, k), ex.audio_samples[lo:hi]))
        if pairs:
            vectors = run_keyed(self.cfg.encoders.audio, pairs, self.models.encoder("audio").embed)
            for i in slots:
                for k in range(len(slots[i])):
                    if (key := (batch[i].media_id, k)) in vectors:
                        slots[i][k] = vectors[key]
        out = list(batch)
        for i, found in slots.items():
            out[i] = out[i].with_(vectors=replace(out[i].vectors, audio=tuple(found)))
        return StageOutput(out)


class Enricher:
    """The batch stages of a run, in order, and their models (each loads once per process).

    Image analysis (it decides which frames go on, and adds OCR text), speech (VAD, pitch, ASR: the
    transcripts are text too), text (redaction, chunking, language), the encoders, then alignment
    (made per batch: it needs the kept rows of the batch's partly recomputed items).
    """

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        import_plugins(cfg.encoders.plugins)  # this process may have unpickled cfg without validating it
        self.analyzer = TextAnalyzer(cfg.text)
        self.analyzer.check()  # missing NLTK data fails the run here, before any item
        check_available(cfg)  # so does a switched-on image analysis without its package
        self.models = Models(cfg)
        self.meta = ModelMeta(cfg)  # widths and provenance, without loading
        self.stages: list[Stage] = [
            AnalysisStage(cfg),
            *speech_stages(cfg),
            TextStage(cfg, self.analyzer, lambda: self.models.encoder("text")),
            EmbedImage(cfg, self.models, self.meta),
            EmbedText(cfg, self.models, self.analyzer),
            EmbedAudio(cfg, self.models),
            *([EmbedVideo(cfg, self.models)] if cfg.encoders.video is not None else []),
        ]

    def encoder(self, modality: str) -> Any:
        """The configured encoder of a modality, loaded once per process."""
        return self.models.encoder(modality)

    def load_models(self) -> None:
        """Load every encoder the batch stages use, now (a worker's setup; switched-off ones stay off)."""
        enc = self.cfg.encoders
        used = {m for s in self.stages for m in s.resources.models}
        for modality in ("image", "text", "audio"):
            name = getattr(enc, modality)
            if name is not None and name in used:
                self.models.encoder(modality).load()
        if enc.video is not None:
            self.models.video().load()

    def dims(self) -> dict[str, int]:
        """Vector widths of the configured encoders (from their metadata: nothing is loaded)."""
        return self.meta.dims()

    def fusion(self) -> Fusion:
        """The configured fusion method for `segments.joint` (its projection loaded once)."""
        return self.meta.fusion()

    def provenance(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per table and vector column, the provenance of the encoder that fills it."""
        return self.meta.provenance()

    def run(
        self,
        batch: list[Extracted],
        times: StageTimes | None = None,
        stored: Mapping[str, StoredItem] | None = None,
    ) -> list[Item]:
        """Every batch stage, then alignment, over the live items of a batch.

        `stored`: what the store keeps of partly recomputed items (their other tables' vectors).
        """
        items = [Item(ex) for ex in batch if not ex.failed]
        return apply_stages([*self.stages, AlignStage(self.cfg, stored)], items, times)
