"""What a text backend returns (tokens, lemmas, stems, stop flags, POS, entities), shared by both backends."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entity:
    """A named entity: its text, label (spaCy's scheme: PERSON, ORG, GPE...) and character span."""

    text: str
    label: str
    start_char: int
    end_char: int

    def as_row(self) -> dict[str, Any]:
        """The Arrow struct value stored in `text.entities`."""
        return {
            "text": self.text,
            "label": self.label,
            "start_char": self.start_char,
            "end_char": self.end_char,
        }


@dataclass
class TextAnalysis:
    """Per-token annotations of one text, aligned by index; POS and entities when the backend has them."""

    tokens: list[str]
    lemmas: list[str]
    stems: list[str]
    is_stop: list[bool]
    pos: list[str] | None = None
    entities: list[Entity] | None = None


class CachedStemmer:
    """A stemmer whose results are memoised: words repeat, and NLTK's stemmers are pure Python."""

    def __init__(self, stemmer: Any, maxsize: int = 200_000) -> None:
        """Wrap `stemmer.stem` in a bounded, thread-safe cache."""
        self._stem = functools.lru_cache(maxsize=maxsize)(stemmer.stem)

    def stem(self, word: str) -> str:
        """The stem of a word."""
        return str(self._stem(word))


def make_stemmer(name: str) -> CachedStemmer:
    """NLTK's Porter or Snowball (English) stemmer, memoised; neither needs downloaded data."""
    from mmfs.light_imports import import_nltk

    import_nltk()  # NLTK's package import, without the scikit-learn it would pull in (1 s, ~190 MB)
    from nltk.stem import PorterStemmer, SnowballStemmer

    return CachedStemmer(PorterStemmer() if name == "porter" else SnowballStemmer("english"))
