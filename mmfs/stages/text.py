"""The text stage: an item's final text segments, redacted, chunked and tagged with their language.

Runs after image analysis and speech (their OCR text and transcripts are segments too) and before the
encoders, so everything that reads text (the text encoder, the label bridge's OCR words, the rows,
the vocabulary) reads the same redacted, chunked segments. Returns each item with a `PreparedText`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from mmfs.config import PipelineConfig
from mmfs.stages.base import Resources, StageBase, StageOutput
from mmfs.stages.items import Item, PreparedText
from mmfs.transforms.text.captions import TextSegment
from mmfs.transforms.text.chunking import token_chunks
from mmfs.transforms.text.clean import LanguageIdentifier
from mmfs.transforms.text.pii import pieces, redact_batch
from mmfs.transforms.text.tokens import TextAnalyzer, split_document

_NER_CHARS = 100_000  # longer texts reach spaCy's NER in pieces (its memory grows with the text)


@runtime_checkable
class Tokenizing(Protocol):
    """A text encoder that exposes its tokenizer and input limit (token chunking needs both)."""

    max_tokens: int

    def tokenizer(self) -> Any:
        """The encoder's own tokenizer, called as a Hugging Face fast tokenizer is."""
        ...


class TextStage(StageBase):
    """Redaction (`text.redact_pii`), document chunking (`text.chunking`) and language per source."""

    name, timing = "text", "text"
    resources = Resources(models=("spacy",))

    def __init__(
        self, cfg: PipelineConfig, analyzer: TextAnalyzer, tokenizer: Callable[[], Any] | None
    ) -> None:
        """`tokenizer` gives the text encoder's tokenizer and its `max_tokens` (token chunking)."""
        self.cfg, self.analyzer, self.tokenizer = cfg, analyzer, tokenizer

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with its prepared text segments and their languages."""
        texts = [list(it.texts) for it in batch]
        if self.cfg.text.redact_pii:
            texts = self._redact(texts)
        out = []
        for it, segments in zip(batch, texts, strict=True):
            chunked = self._chunked(it, segments)
            tags, confidence = languages(chunked)
            out.append(it.with_(prepared=PreparedText(tuple(chunked), tags, confidence)))
        return StageOutput(out)

    def _redact(self, texts: list[list[TextSegment]]) -> list[list[TextSegment]]:
        """Every segment with its PII replaced by placeholders, before anything else reads it."""
        flat = [seg for segs in texts for seg in segs]
        if not flat:
            return texts
        redacted = iter(redact_batch([s.text for s in flat], self.person_spans))
        return [[_with_text(seg, next(redacted).text) for seg in segs] for segs in texts]

    def person_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
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

    def _chunked(self, item: Item, segments: list[TextSegment]) -> list[TextSegment]:
        """A document cut into chunks the text encoder takes whole (its tokens), or by characters."""
        if item.ex.kind != "text" or not segments:  # a stale item may not redo its text
            return segments
        t, doc = self.cfg.text, segments[0]
        encoder = self.tokenizer() if t.chunking == "tokens" and self.tokenizer is not None else None
        if isinstance(encoder, Tokenizing):
            max_tokens = min(t.chunk_tokens or encoder.max_tokens, encoder.max_tokens)
            chunks = token_chunks(
                doc.text,
                encoder.tokenizer(),
                max_tokens=max_tokens,
                overlap=min(t.chunk_overlap_tokens, max_tokens - 1),
                sentences=self.analyzer.sentences,
            )
            return [TextSegment(c, None, None, "document", doc.charset) for c in chunks]
        parts = split_document(doc.text, self.analyzer, chunk_chars=self.cfg.align.chunk_chars)
        return [_with_charset(p, doc.charset) for p in parts]


def languages(segments: list[TextSegment]) -> tuple[dict[str, str | None], dict[str, float | None]]:
    """The language of each text source of an item (its segments together), offline, and how sure."""
    by_source: dict[str, list[str]] = {}
    for seg in segments:
        by_source.setdefault(seg.source, []).append(seg.text)
    guesses = {src: LanguageIdentifier.identify_scored(" ".join(t)) for src, t in by_source.items()}
    tags = {src: g.code if g else None for src, g in guesses.items()}
    return tags, {src: g.confidence if g else None for src, g in guesses.items()}


def _with_text(seg: TextSegment, text: str) -> TextSegment:
    """The same segment with other text (times, source and charset kept)."""
    return TextSegment(text, seg.start_s, seg.end_s, seg.source, seg.charset)


def _with_charset(seg: TextSegment, charset: str | None) -> TextSegment:
    """The same segment, recording the charset its source was decoded with."""
    return TextSegment(seg.text, seg.start_s, seg.end_s, seg.source, charset)
