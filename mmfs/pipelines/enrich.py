"""Batch stage: text analysis and every encoder, run once over a whole batch of extracted items.

Batching across items is what keeps the models busy: the frames of eight videos go through the
image encoder together, every caption and label line through the text encoder together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmfs.config import PipelineConfig
from mmfs.encoders import get_cached
from mmfs.encoders.label_bridge import FrameHints
from mmfs.encoders.registry import import_plugins
from mmfs.pipelines.analysis import FrameAnalysis, analyse_batch, check_available
from mmfs.pipelines.batch_stage import run_stage
from mmfs.pipelines.bridge import bridge_batch
from mmfs.pipelines.fusion import Fusion
from mmfs.pipelines.items import Extracted
from mmfs.pipelines.model_meta import ModelMeta, video_options
from mmfs.pipelines.speech import SpeechStage
from mmfs.transforms.captions import TextSegment
from mmfs.transforms.chunking import token_chunks
from mmfs.transforms.clip import clip_groups
from mmfs.transforms.pii import pieces, redact_batch
from mmfs.transforms.text import TextAnalysis, TextAnalyzer, split_document
from mmfs.transforms.text_clean import LanguageIdentifier

_NER_CHARS = 100_000  # longer texts reach spaCy's NER in pieces (its memory grows with the text)


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
    languages: dict[str, str | None] = field(default_factory=dict)  # per text source
    language_confidence: dict[str, float | None] = field(default_factory=dict)  # of each source's tag
    analysis: FrameAnalysis | None = None  # image analysis of the frames (pipelines/analysis.py)
    clip_times: np.ndarray | None = None  # video encoder: each clip's middle time, and its vector
    clip_vectors: np.ndarray | None = None
    frame_hints: list[FrameHints] = field(default_factory=list)  # label bridge: cues per frame
    bridge_texts: list[str] = field(default_factory=list)  # label bridge: its words per frame


class Enricher:
    """Holds the analyzer and encoders for a run (each model loads once per process)."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        import_plugins(cfg.encoders.plugins)  # this process may have unpickled cfg without validating it
        self.analyzer = TextAnalyzer(cfg.text)
        self.analyzer.check()  # missing NLTK data fails the run here, before any item
        check_available(cfg)  # so does a switched-on image analysis without its package
        self.speech = SpeechStage(cfg)  # VAD, pitch, ASR (audio.vad / pitch / asr)
        self.meta = ModelMeta(cfg)  # widths and provenance, without loading

    def encoder(self, modality: str) -> Any:
        """The configured encoder of a modality, loaded once per process."""
        enc = self.cfg.encoders
        name = getattr(enc, modality)
        return get_cached(
            name, device=enc.device, batch_size=enc.batch_size, threads=enc.threads, options=enc.options(name)
        )

    def video_encoder(self) -> Any:
        """The configured clip encoder (`encoders.video`), loaded once per process; None when off."""
        e = self.cfg.encoders
        if e.video is None:
            return None
        options = video_options(self.cfg)
        return get_cached(
            e.video, device=e.device, batch_size=e.batch_size, threads=e.threads, options=options
        )

    def dims(self) -> dict[str, int]:
        """Vector widths of the configured encoders (from their metadata: nothing is loaded)."""
        return self.meta.dims()

    def fusion(self) -> Fusion:
        """The configured fusion method for `segments.joint` (its projection loaded once)."""
        return self.meta.fusion()

    def provenance(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per table and vector column, the provenance of the encoder that fills it."""
        return self.meta.provenance()

    def shared_space(self) -> bool:
        """Whether image and text encoders embed into one space (CLIP): frames then need no label bridge."""
        return self.meta.shared_space()

    def run(self, batch: list[Extracted]) -> list[Enriched]:
        """Analyse and embed a batch; an item whose encoder fails is degraded, not lost.

        When a stage fails for the whole batch, it is re-run item by item, so one poison input (a
        frame that makes a NaN, a text the model rejects) degrades its own item only.
        """
        live = [Enriched(ex) for ex in batch if not ex.failed]
        analyse_batch(live, self.cfg)  # before the encoders: it may drop frames and adds OCR text
        self.speech.run(live)  # first: transcripts are then redacted, analysed and embedded
        if self.cfg.text.redact_pii:
            self._redact(live)
        self._chunk_documents(live)
        self._languages(live)
        stages = [("image", self._images), ("text", self._texts), ("audio", self._audio)]
        if self.cfg.encoders.video is not None:
            stages.append(("video", self._videos))
        for stage, fn in stages:
            run_stage(f"embed_{stage}", fn, live)
        return live

    def _redact(self, items: list[Enriched]) -> None:
        """Replace PII in every text segment before anything else reads it (`text.redact_pii`)."""
        segments = [seg for it in items for seg in it.ex.texts]
        if not segments:
            return
        redacted = iter(redact_batch([s.text for s in segments], self._person_spans))
        for it in items:
            it.ex.texts = [_with_text(seg, next(redacted).text) for seg in it.ex.texts]

    def _person_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character spans of spaCy PERSON entities in each text (the NER alone runs)."""
        nlp = self.analyzer.nlp
        disable = [p for p in nlp.pipe_names if p not in ("tok2vec", "ner")]
        parts = [(i, offset, piece) for i, t in enumerate(texts) for offset, piece in pieces(t, _NER_CHARS)]
        spans: list[list[tuple[int, int]]] = [[] for _ in texts]
        docs = nlp.pipe((piece for _, _, piece in parts), batch_size=64, disable=disable)
        for (i, offset, _), doc in zip(parts, docs, strict=True):
            spans[i] += [
                (offset + e.start_char, offset + e.end_char) for e in doc.ents if e.label_ == "PERSON"
            ]
        return spans

    def _chunk_documents(self, items: list[Enriched]) -> None:
        """Cut each document into chunks the text encoder takes whole (its tokens), or by characters."""
        t = self.cfg.text
        for item in items:
            if item.ex.kind != "text" or not item.ex.texts:  # a stale item may not redo its text
                continue
            doc = item.ex.texts[0]
            encoder = self.encoder("text") if t.chunking == "tokens" else None
            if encoder is not None and hasattr(encoder, "tokenizer"):
                max_tokens = min(t.chunk_tokens or encoder.max_tokens, encoder.max_tokens)
                chunks = token_chunks(
                    doc.text,
                    encoder.tokenizer(),
                    max_tokens=max_tokens,
                    overlap=min(t.chunk_overlap_tokens, max_tokens - 1),
                    sentences=self.analyzer.sentences,
                )
                item.ex.texts = [TextSegment(c, None, None, "document", doc.charset) for c in chunks]
            else:
                pieces = split_document(doc.text, self.analyzer, chunk_chars=self.cfg.align.chunk_chars)
                item.ex.texts = [_with_charset(p, doc.charset) for p in pieces]

    @staticmethod
    def _languages(items: list[Enriched]) -> None:
        """The language of each text source of an item (its segments together), offline."""
        for it in items:
            by_source: dict[str, list[str]] = {}
            for seg in it.ex.texts:
                by_source.setdefault(seg.source, []).append(seg.text)
            guesses = {src: LanguageIdentifier.identify_scored(" ".join(t)) for src, t in by_source.items()}
            it.languages = {src: g.code if g else None for src, g in guesses.items()}
            it.language_confidence = {src: g.confidence if g else None for src, g in guesses.items()}

    def _images(self, items: list[Enriched]) -> None:
        owners = [
            it
            for it in items  # frames decoded only for a stale item's flow are not embedded again
            if it.ex.frames is not None and len(it.ex.frames.times_s) and "frames" in it.ex.computed
        ]
        if not owners:
            return
        pixels = [frame for it in owners for frame in it.ex.frames.frames]  # type: ignore[union-attr]
        image, top_k = self.encoder("image"), self.cfg.image.top_labels
        if self.shared_space():  # the frame's own vector is already in the text space (CLIP)
            vectors, labels = image.embed_and_classify(pixels, top_k=top_k)
            label_vectors = vectors
        else:  # the label bridge: class words weighted by probability, plus pixel cues (pipelines/bridge)
            vectors, labels, probs = image.embed_classify_probabilities(pixels, top_k=top_k)
            label_vectors = bridge_batch(owners, probs, self.encoder("text"))
        start = 0
        for it in owners:
            n = len(it.ex.frames.times_s)  # type: ignore[union-attr]
            it.frame_vectors = vectors[start : start + n]
            it.frame_labels = labels[start : start + n]
            it.label_vectors = label_vectors[start : start + n]
            start += n

    def _videos(self, items: list[Enriched]) -> None:
        """Clip vectors of each video's sampled frames, one clip per `align.segment_s` window."""
        jobs: list[tuple[Enriched, list[float], int]] = []
        clips: list[np.ndarray] = []
        for it in items:
            frames = it.ex.frames
            if it.ex.kind != "video" or frames is None or "frames" not in it.ex.computed:
                continue
            groups = clip_groups(frames.times_s, self.cfg.align.segment_s)
            clips += [frames.frames[idx] for idx, _ in groups]
            jobs.append((it, [t for _, t in groups], len(groups)))
        if not clips:
            return
        vectors = self.video_encoder().embed(clips)
        start = 0
        for it, times, n in jobs:
            it.clip_times, it.clip_vectors = np.array(times), vectors[start : start + n]
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


def _with_text(seg: TextSegment, text: str) -> TextSegment:
    """The same segment with other text (times, source and charset kept)."""
    return TextSegment(text, seg.start_s, seg.end_s, seg.source, seg.charset)


def _with_charset(seg: TextSegment, charset: str | None) -> TextSegment:
    """The same segment, recording the charset its source was decoded with."""
    return TextSegment(seg.text, seg.start_s, seg.end_s, seg.source, charset)


def _clip(seg: TextSegment, max_chars: int) -> str:
    return seg.text if len(seg.text) <= max_chars else seg.text[:max_chars]
