"""Language of a text, with a confidence, that stays right on short texts full of foreign names.

py3langid scores character n-grams; on a short English sentence a few accented names outweigh the
English around them ("José and Zoë met François at the café" came out French, "Lunch with Åsa and
Øystein" Nigerian Pidgin). Two corrections apply to short texts (under `SHORT_CHARS`):
- names carry no evidence of the language around them: capitalised words that do not start a
  sentence are left out of the n-gram scoring while enough other words remain;
- function words are evidence: each word of a language's stop list (spaCy's, shipped in its wheel)
  multiplies that language's odds by `STOPWORD_ODDS`.
The confidence is the winning language's share of the combined probability (0 to 1).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SHORT_CHARS = 300  # texts shorter than this get the name and function-word corrections
MAX_CHARS = 20_000  # a longer text is judged by its start
STOPWORD_ODDS = 5.0  # odds a language gains per word of its stop list
MIN_WORDS_LEFT = 1  # names are left out only while this many other words remain
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_SENTENCE_END = frozenset(".!?¿¡:;\n")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "mt", "vs"})  # "Dr." ends none
# spaCy's stop lists for the languages py3langid can tell (the ones spaCy has; others get no bonus)
STOPWORD_LANGS = (
    "af", "am", "ar", "az", "bg", "bn", "ca", "cs", "da", "de", "el", "en", "es", "et", "eu", "fa", "fi",
    "fr", "ga", "gu", "he", "hi", "hr", "hu", "hy", "id", "is", "it", "ja", "kn", "ko", "ky", "la", "lb",
    "lt", "lv", "mk", "ml", "mr", "ms", "nb", "ne", "nl", "pl", "pt", "ro", "ru", "si", "sk", "sl", "sq",
    "sr", "sv", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi", "yo", "zh",
)  # fmt: skip


@dataclass(frozen=True)
class LanguageGuess:
    """An ISO 639-1 (or 639-3 where there is none) code and how sure the guess is, 0 to 1."""

    code: str
    confidence: float


class _Model:
    """py3langid's offline model (an npz inside the package, no pickle), loaded once per process."""

    _lock = threading.Lock()
    _model: Any = None

    @classmethod
    def get(cls) -> Any:
        with cls._lock:
            if cls._model is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                cls._model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            return cls._model


def identify(text: str) -> LanguageGuess | None:
    """The text's language and its confidence; None when it has no letters to judge by."""
    if not any(ch.isalpha() for ch in text):
        return None
    text = text[:MAX_CHARS]
    model = _Model.get()
    if len(text) >= SHORT_CHARS:
        with _Model._lock:  # the model's scratch buffers are not thread-safe
            code, prob = model.classify(text)
        return LanguageGuess(str(code), round(float(prob), 4))
    words = _WORD.findall(text)
    scored = _without_names(text, words)
    with _Model._lock:  # the model's scratch buffers are not thread-safe
        ranked = model.rank(scored)
    lowered = [w.lower() for w in words]
    logits = {
        str(code): math.log(max(float(p), 1e-12)) + math.log(STOPWORD_ODDS) * _stop_hits(str(code), lowered)
        for code, p in ranked
    }
    top = max(logits.values())
    total = sum(math.exp(v - top) for v in logits.values())
    code = max(logits, key=lambda c: logits[c])
    return LanguageGuess(code, round(1.0 / total, 4))


def _without_names(text: str, words: list[str]) -> str:
    """The text without capitalised words that do not start a sentence (names), while enough is left."""
    kept: list[str] = []
    sentence_start, previous, position = True, "", 0
    for word in words:
        at = text.find(word, position)
        if any(ch in _SENTENCE_END for ch in text[position:at]) and previous.lower() not in _ABBREVIATIONS:
            sentence_start = True
        position, previous = at + len(word), word
        if not (word[0].isupper() and not sentence_start):
            kept.append(word)
        sentence_start = False
    return " ".join(kept) if len(kept) >= MIN_WORDS_LEFT else text


def _stop_hits(code: str, words: list[str]) -> int:
    """How many of the (lower-cased) words are on the language's stop list."""
    stops = _stop_words(code)
    return sum(1 for w in words if w in stops)


@cache
def _stop_words(code: str) -> frozenset[str]:
    """spaCy's stop list of a language (empty when spaCy has none)."""
    if code not in STOPWORD_LANGS:
        return frozenset()
    # The list's own file, run alone: importing `spacy.lang.<code>.stop_words` would run the language
    # package's __init__ first, whose tokenizer exceptions cost seconds to build (French: 2-5 s).
    package = importlib.util.find_spec("spacy")
    places = package.submodule_search_locations if package is not None else None
    path = Path(places[0]) / "lang" / code / "stop_words.py" if places else None
    spec = importlib.util.spec_from_file_location(f"_mmfs_stop_words_{code}", path) if path else None
    if spec is None or spec.loader is None or path is None or not path.is_file():
        return frozenset()
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return frozenset(w.lower() for w in getattr(module, "STOP_WORDS", ()))
