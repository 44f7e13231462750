"""Bag of words and TF-IDF over a corpus vocabulary of word n-grams: fit, refit, extend, vectorise.

Pure functions over token lists (no store): terms are lowercased tokens with punctuation-only tokens
dropped, joined into n-grams of 1..ngram_max words. A refit numbers terms in sorted order, so the same
corpus always gives the same vocabulary; an extension keeps every existing term id and appends new
terms after them, so sparse vectors made with the old ids stay valid. IDF is scikit-learn's smoothed
form, ln((1 + n) / (1 + df)) + 1, and TF-IDF vectors are L2-normalised.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Vocabulary:
    """Terms in term-id order with their document frequencies over `n_docs` text rows."""

    terms: tuple[str, ...]
    df: tuple[int, ...]
    n_docs: int

    @property
    def ids(self) -> dict[str, int]:
        """Term to term id."""
        return {term: i for i, term in enumerate(self.terms)}

    @property
    def idf(self) -> np.ndarray:
        """Smoothed inverse document frequency per term id."""
        df = np.asarray(self.df, dtype=np.float64)
        return np.log((1.0 + self.n_docs) / (1.0 + df)) + 1.0

    @property
    def version(self) -> str:
        """A short hash of terms, ids and frequencies: rows vectorised with it carry it."""
        payload = json.dumps([self.terms, self.df, self.n_docs], separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def terms_of(tokens: Iterable[str], ngram_max: int) -> list[str]:
    """Word n-grams (1..ngram_max) of the lowercased tokens that hold a letter or digit."""
    words = [t.lower() for t in tokens if any(ch.isalnum() for ch in t)]
    out = list(words)
    for n in range(2, ngram_max + 1):
        out.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return out


def document_frequencies(docs: Iterable[list[str]]) -> tuple[Counter[str], int]:
    """How many documents hold each term, and how many documents there are."""
    df: Counter[str] = Counter()
    n = 0
    for terms in docs:
        df.update(set(terms))
        n += 1
    return df, n


def _kept(df: Mapping[str, int], min_df: int, max_features: int | None) -> list[str]:
    """Terms with at least min_df documents; the max_features most frequent (ties by term) when set."""
    kept = [t for t, c in df.items() if c >= min_df]
    if max_features is not None and len(kept) > max_features:
        kept = sorted(kept, key=lambda t: (-df[t], t))[:max_features]
    return sorted(kept)


def refit(
    df: Mapping[str, int], n_docs: int, *, min_df: int = 1, max_features: int | None = None
) -> Vocabulary:
    """A fresh vocabulary: kept terms numbered in sorted order."""
    terms = _kept(df, min_df, max_features)
    return Vocabulary(tuple(terms), tuple(int(df[t]) for t in terms), n_docs)


def extend(
    old: Vocabulary, df: Mapping[str, int], n_docs: int, *, min_df: int = 1, max_features: int | None = None
) -> Vocabulary:
    """The old vocabulary with ids kept, frequencies updated and new kept terms appended (sorted)."""
    known = set(old.terms)
    room = None if max_features is None else max(0, max_features - len(old.terms))
    new = _kept({t: c for t, c in df.items() if t not in known}, min_df, None)
    if room is not None and len(new) > room:
        new = sorted(sorted(new, key=lambda t: (-df[t], t))[:room])
    terms = (*old.terms, *new)
    return Vocabulary(terms, tuple(int(df.get(t, 0)) for t in terms), n_docs)


def vectorize(
    terms: list[str], ids: Mapping[str, int], idf: np.ndarray
) -> tuple[list[int], list[float], list[float]]:
    """Sorted term ids, their counts, and their L2-normalised TF-IDF values (out-of-vocabulary dropped)."""
    counts = Counter(ids[t] for t in terms if t in ids)
    indices = sorted(counts)
    tf = np.array([counts[i] for i in indices], dtype=np.float64)
    weights = tf * idf[indices] if indices else tf
    norm = math.sqrt(float(np.dot(weights, weights)))
    tfidf = (weights / norm) if norm > 0 else weights
    return indices, tf.astype(np.float32).tolist(), tfidf.astype(np.float32).tolist()
