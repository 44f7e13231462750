"""Bag of words and TF-IDF: n-gram terms, deterministic refit, extension keeping ids, frozen vectors."""

from __future__ import annotations

import numpy as np

from mmfs.transforms.text.vocabulary import document_frequencies, extend, refit, terms_of, vectorize

DOCS = [["The", "owl", "hunts", "."], ["The", "bat", "hunts", "the", "moth", "!"]]


def test_terms_are_lowercased_ngrams_without_punctuation() -> None:
    assert terms_of(["The", "owl", "hunts", "."], 2) == ["the", "owl", "hunts", "the owl", "owl hunts"]


def test_refit_is_sorted_and_counts_documents() -> None:
    df, n = document_frequencies(terms_of(d, 1) for d in DOCS)
    vocab = refit(df, n)
    assert vocab.terms == ("bat", "hunts", "moth", "owl", "the")
    assert vocab.df == (1, 2, 1, 1, 2) and vocab.n_docs == 2
    np.testing.assert_allclose(vocab.idf, [np.log(3 / 2) + 1, 1.0, np.log(3 / 2) + 1, np.log(3 / 2) + 1, 1.0])
    assert refit(df, n).version == vocab.version


def test_min_df_and_max_features() -> None:
    df, n = document_frequencies(terms_of(d, 1) for d in DOCS)
    assert refit(df, n, min_df=2).terms == ("hunts", "the")
    assert refit(df, n, max_features=3).terms == ("bat", "hunts", "the")  # most frequent, ties by term


def test_extend_keeps_ids_and_appends_new_terms() -> None:
    df, n = document_frequencies(terms_of(d, 1) for d in DOCS)
    old = refit(df, n)
    more = [*DOCS, ["An", "owl", "and", "a", "zebra"]]
    df2, n2 = document_frequencies(terms_of(d, 1) for d in more)
    new = extend(old, df2, n2)
    assert new.terms[: len(old.terms)] == old.terms
    assert new.terms[len(old.terms) :] == ("a", "an", "and", "zebra")
    assert new.ids["owl"] == old.ids["owl"] and new.df[new.ids["owl"]] == 2 and new.n_docs == 3
    assert new.version != old.version


def test_vectorize_gives_counts_and_unit_tfidf() -> None:
    df, n = document_frequencies(terms_of(d, 1) for d in DOCS)
    vocab = refit(df, n)
    indices, counts, tfidf = vectorize([*terms_of(DOCS[1], 1), "unknown"], vocab.ids, vocab.idf)
    assert [vocab.terms[i] for i in indices] == ["bat", "hunts", "moth", "the"]
    assert counts == [1.0, 1.0, 1.0, 2.0]
    assert abs(float(np.linalg.norm(tfidf)) - 1.0) < 1e-6
    assert tfidf[0] > tfidf[1]  # a rarer term weighs more at the same count
