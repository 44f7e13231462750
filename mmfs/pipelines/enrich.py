"""Batch stage: text analysis and every encoder, run once over a whole batch of extracted items.

Batching across items is what keeps the models busy: the frames of eight videos go through the
image encoder together, every caption and label line through the text encoder together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmfs.config import PipelineConfig
from mmfs.encoders import get_cached
from mmfs.errors import MmfsError
from mmfs.pipelines.extract import Extracted, StageFailure
from mmfs.transforms.captions import TextSegment
from mmfs.transforms.text import TextAnalysis, TextAnalyzer, split_document


@dataclass
class Enriched:
    """An extracted item plus its text analyses and vectors (aligned by position)."""

    ex: Extracted
    analyses: list[TextAnalysis] = field(default_factory=list)
    text_vectors: np.ndarray | None = None
    frame_vectors: np.ndarray | None = None
    frame_labels: list[list[tuple[str, float]]] = field(default_factory=list)
    label_vectors: np.ndarray | None = None
    audio_vectors: list[np.ndarray | None] = field(default_factory=list)


class Enricher:
    """Holds the analyzer and encoders for a run (each model loads once per process)."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        self.analyzer = TextAnalyzer(cfg.text)

    def encoder(self, modality: str) -> Any:
        """The configured encoder of a modality, loaded once per process."""
        name = getattr(self.cfg.encoders, modality)
        return get_cached(name, device=self.cfg.encoders.device, batch_size=self.cfg.encoders.batch_size)

    def dims(self) -> dict[str, int]:
        """Vector widths of the configured encoders."""
        return {m: int(self.encoder(m).dim) for m in ("image", "text", "audio")}

    def provenance(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per table and vector column, the provenance of the encoder that fills it."""
        image, text, audio = (self.encoder(m).provenance() for m in ("image", "text", "audio"))
        motion = {"name": "flow.farneback", "preprocessing": self.cfg.flow.model_dump_json()}
        return {
            "frames": {"embedding": image, "label_embedding": text},
            "audio": {"embedding": audio},
            "text": {"embedding": text},
            "segments": {
                "visual": image,
                "motion": motion,
                "audio": audio,
                "text": text,
                "labels": text,
                "fused": text,
            },
        }

    def run(self, batch: list[Extracted]) -> list[Enriched]:
        """Analyse and embed a batch; an item whose encoder fails is degraded, not lost.

        When a stage fails for the whole batch, it is re-run item by item, so one poison input (a
        frame that makes a NaN, a text the model rejects) degrades its own item only.
        """
        live = [Enriched(ex) for ex in batch if not ex.failed]
        self._chunk_documents(live)
        for stage, fn in (("image", self._images), ("text", self._texts), ("audio", self._audio)):
            try:
                fn(live)
            except MmfsError:
                self._one_by_one(stage, fn, live)
        return live

    @staticmethod
    def _one_by_one(stage: str, fn: Callable[[list[Enriched]], None], items: list[Enriched]) -> None:
        """Re-run a failed batch stage per item; only the items that fail alone are degraded."""
        for item in items:
            try:
                fn([item])
            except MmfsError as err:
                item.ex.failures.append(StageFailure(f"embed_{stage}", err))

    def _chunk_documents(self, items: list[Enriched]) -> None:
        for item in items:
            if item.ex.kind == "text" and item.ex.texts:
                doc = item.ex.texts[0].text
                item.ex.texts = split_document(doc, self.analyzer, chunk_chars=self.cfg.align.chunk_chars)

    def _images(self, items: list[Enriched]) -> None:
        owners = [
            it
            for it in items  # frames decoded only for a stale item's flow are not embedded again
            if it.ex.frames is not None and len(it.ex.frames.times_s) and "frames" in it.ex.computed
        ]
        if not owners:
            return
        pixels = [frame for it in owners for frame in it.ex.frames.frames]  # type: ignore[union-attr]
        vectors, labels = self.encoder("image").embed_and_classify(pixels, top_k=self.cfg.image.top_labels)
        label_lines = [", ".join(name for name, _ in frame_labels) for frame_labels in labels]
        label_vectors = self.encoder("text").embed(label_lines)
        start = 0
        for it in owners:
            n = len(it.ex.frames.times_s)  # type: ignore[union-attr]
            it.frame_vectors = vectors[start : start + n]
            it.frame_labels = labels[start : start + n]
            it.label_vectors = label_vectors[start : start + n]
            start += n

    def _texts(self, items: list[Enriched]) -> None:
        owners = [it for it in items if it.ex.texts]
        texts = [_clip(seg, self.cfg.text.max_segment_chars) for it in owners for seg in it.ex.texts]
        if not texts:
            return
        analyses = self.analyzer.analyze(texts)
        vectors = self.encoder("text").embed(texts)
        start = 0
        for it in owners:
            n = len(it.ex.texts)
            it.analyses = analyses[start : start + n]
            it.text_vectors = vectors[start : start + n]
            start += n

    def _audio(self, items: list[Enriched]) -> None:
        jobs: list[tuple[Enriched, int, np.ndarray]] = []
        for it in items:
            ex = it.ex
            it.audio_vectors = [None] * len(ex.audio_windows)
            if ex.audio_samples is None:
                continue
            for i, window in enumerate(ex.audio_windows):
                if window.rms >= self.cfg.audio.embed_min_rms:
                    lo, hi = (
                        round(window.start_s * ex.audio_rate),
                        round(window.end_s * ex.audio_rate),
                    )
                    jobs.append((it, i, ex.audio_samples[lo:hi]))
        if not jobs:
            return
        vectors = self.encoder("audio").embed([samples for _, _, samples in jobs])
        for (it, i, _), vec in zip(jobs, vectors, strict=True):
            it.audio_vectors[i] = vec


def _clip(seg: TextSegment, max_chars: int) -> str:
    return seg.text if len(seg.text) <= max_chars else seg.text[:max_chars]
