"""The NLTK text backend: Punkt sentences, Treebank tokens, WordNet lemmas, Porter/Snowball stems.

Its data (punkt_tab, WordNet, stop words) is built offline by the project's set-up
(`mmfs.transforms.text.nltk_data`) and found on NLTK's search path or in `text.nltk_data`; when it is
missing, the backend fails at construction with one ConfigError that names the fix. NLTK has no POS
tagger or entity recogniser without more data, so `pos` and `entities` stay empty (None) here.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmfs.light_imports import import_nltk
from mmfs.transforms.text.nltk_data import PUNKT_FILES, WORDNET_FILES, find_resource, search_paths
from mmfs.transforms.text.types import TextAnalysis, make_stemmer

_WORDNET_REQUIRED = ("lexnames", *WORDNET_FILES)


class NltkBackend:
    """Sentences, tokens, lemmas, stems and stop flags from NLTK, with data found once at construction."""

    def __init__(
        self, stemmer: str, paths: Sequence[str | Path] = (), *, use_default_paths: bool = True
    ) -> None:
        """Locate every resource now, so a missing one fails the run before any item is processed.

        `paths` are searched first, then NLTK's own path unless `use_default_paths` is false."""
        where = search_paths(paths) if use_default_paths else [Path(p) for p in paths]
        self._punkt_dir = find_resource(
            "tokenizers/punkt_tab/english", where, PUNKT_FILES, "Punkt (punkt_tab)"
        )
        self._wordnet_dir = find_resource("corpora/wordnet", where, _WORDNET_REQUIRED, "WordNet")
        stop_dir = find_resource("corpora/stopwords", where, ("english",), "stop words")
        self.stop_words = frozenset((stop_dir / "english").read_text(encoding="utf-8").split())
        self.stemmer = make_stemmer(stemmer)
        self._lock = threading.Lock()
        self._sent: Any = None
        self._lemmatizer: Any = None
        import_nltk()
        from nltk.tokenize import TreebankWordTokenizer

        self._words = TreebankWordTokenizer()

    def _loaded(self) -> tuple[Any, Any]:
        """The Punkt tokenizer and the WordNet lemmatizer, loaded on first use (once per process)."""
        with self._lock:
            if self._sent is None:
                self._sent, self._lemmatizer = _load_models(self._punkt_dir, self._wordnet_dir)
        return self._sent, self._lemmatizer

    def sentences(self, text: str) -> list[str]:
        """Punkt sentences of each paragraph (never across a blank line), whitespace collapsed."""
        punkt, _ = self._loaded()
        out = []
        for paragraph in text.replace("\r\n", "\n").split("\n\n"):
            for sentence in punkt.tokenize(paragraph):
                cleaned = " ".join(sentence.split())
                if cleaned:
                    out.append(cleaned)
        return out

    def lemma(self, word: str) -> str:
        """WordNet lemma of a lowercased word: as a noun, else as a verb (there is no tagger to ask)."""
        _, (_, reader) = self._loaded()
        for pos in ("n", "v"):
            found = reader.morphy(word, pos)
            if found is not None and found != word:
                return str(found)
        return word

    def analyze(self, texts: list[str]) -> list[TextAnalysis]:
        """Treebank tokens per Punkt sentence, WordNet lemmas, stems of lowercased tokens, stop flags."""
        out = []
        for text in texts:
            tokens = [tok for sentence in self.sentences(text) for tok in self._words.tokenize(sentence)]
            lower = [t.lower() for t in tokens]
            out.append(
                TextAnalysis(
                    tokens=tokens,
                    lemmas=[self.lemma(w) for w in lower],
                    stems=[self.stemmer.stem(w) for w in lower],
                    is_stop=[w in self.stop_words for w in lower],
                )
            )
        return out


@functools.lru_cache(maxsize=4)
def _load_models(punkt_dir: Path, wordnet_dir: Path) -> tuple[Any, tuple[Any, Any]]:
    """Punkt and WordNet read from their folders, once per process and folder pair: parsing WordNet
    costs seconds, and every analyzer a process builds (a run's, a worker's, the web API's) shares it."""
    import_nltk()
    from nltk.corpus.reader.wordnet import WordNetCorpusReader
    from nltk.data import FileSystemPathPointer
    from nltk.stem import WordNetLemmatizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer, load_punkt_params

    params = load_punkt_params(FileSystemPathPointer(str(punkt_dir)))
    with warnings.catch_warnings():  # "multilingual functions are not available": not used
        warnings.simplefilter("ignore", UserWarning)
        reader = WordNetCorpusReader(str(wordnet_dir), None)
    lemmatizer = WordNetLemmatizer()
    lemmatizer._wn = reader  # this reader, not the lazily found global `wordnet`
    return PunktSentenceTokenizer(params), (lemmatizer, reader)
