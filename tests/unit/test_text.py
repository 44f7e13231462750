"""spaCy tokens, lemmas, stop words and sentences plus NLTK stems, on known sentences; document chunking."""

from __future__ import annotations

import pytest

from mmfs.config import TextConfig
from mmfs.errors import ConfigError, ErrorCode, MediaLimitExceeded
from mmfs.transforms.text import TextAnalyzer, _blocks, split_document

BATS = "The striped bats were hanging on their feet."


@pytest.fixture(scope="module")
def analyzer() -> TextAnalyzer:
    return TextAnalyzer(TextConfig())


def test_tokens_and_lemmas(analyzer: TextAnalyzer) -> None:
    (a,) = analyzer.analyze([BATS])
    assert a.tokens == ["The", "striped", "bats", "were", "hanging", "on", "their", "feet", "."]
    lemma = dict(zip(a.tokens, a.lemmas, strict=True))
    assert (lemma["bats"], lemma["hanging"], lemma["were"], lemma["feet"]) == ("bat", "hang", "be", "foot")


def test_porter_stems_of_lowercased_tokens(analyzer: TextAnalyzer) -> None:
    (a,) = analyzer.analyze([BATS])
    stem = dict(zip(a.tokens, a.stems, strict=True))
    # Porter restores the e after a short consonant-vowel-consonant stem: striped -> strip -> stripe.
    assert (stem["striped"], stem["bats"], stem["hanging"], stem["feet"]) == ("stripe", "bat", "hang", "feet")
    assert stem["The"] == "the"


def test_snowball_stemmer_differs_from_porter() -> None:
    (porter,) = TextAnalyzer(TextConfig(stemmer="porter")).analyze(["generously running"])
    (snowball,) = TextAnalyzer(TextConfig(stemmer="snowball")).analyze(["generously running"])
    assert porter.stems == ["gener", "run"]
    assert snowball.stems == ["generous", "run"]


def test_stop_word_flags(analyzer: TextAnalyzer) -> None:
    (a,) = analyzer.analyze([BATS])
    stop = dict(zip(a.tokens, a.is_stop, strict=True))
    assert stop["The"] and stop["were"] and stop["on"] and stop["their"]
    assert not (stop["bats"] or stop["striped"] or stop["hanging"] or stop["feet"])


def test_batch_keeps_order_and_drops_whitespace_tokens(analyzer: TextAnalyzer) -> None:
    out = analyzer.analyze(["  Two   spaces\n\nthen a paragraph ", "", BATS])
    assert [a.tokens for a in out[:2]] == [["Two", "spaces", "then", "a", "paragraph"], []]
    assert out[2].tokens[2] == "bats"
    assert all(len(a.tokens) == len(a.lemmas) == len(a.stems) == len(a.is_stop) for a in out)


def test_sentences(analyzer: TextAnalyzer) -> None:
    assert analyzer.sentences("Dr. Watson arrived at noon. Holmes was waiting!") == [
        "Dr. Watson arrived at noon.",
        "Holmes was waiting!",
    ]


def test_sentences_never_cross_a_blank_line_and_unwrap_lines(analyzer: TextAnalyzer) -> None:
    text = "Introduction\n\nIt was a bright cold day in April, and the clocks\nwere striking thirteen."
    assert analyzer.sentences(text) == [
        "Introduction",
        "It was a bright cold day in April, and the clocks were striking thirteen.",
    ]


def test_split_document_groups_sentences_under_the_limit(analyzer: TextAnalyzer) -> None:
    sentences = [f"Sentence number {i} talks about the weather in some detail." for i in range(30)]
    chunks = split_document(" ".join(sentences), analyzer, chunk_chars=200)
    assert len(chunks) > 5 and all(len(c.text) <= 200 for c in chunks)
    assert {(c.source, c.start_s, c.end_s) for c in chunks} == {("document", None, None)}
    joined = " ".join(c.text for c in chunks)
    assert joined == " ".join(sentences)
    positions = [joined.index(s) for s in sentences]
    assert positions == sorted(positions)
    assert all(c.text.endswith(".") for c in chunks)  # chunks end on sentence boundaries


def test_split_document_cuts_an_overlong_sentence_at_whitespace(analyzer: TextAnalyzer) -> None:
    chunks = split_document("word " * 100 + "and " + "x" * 130 + ". Short one.", analyzer, chunk_chars=50)
    assert all(len(c.text) <= 50 for c in chunks)
    assert all(c.text.split(" ")[0] == "word" for c in chunks[:9])
    assert "".join(c.text for c in chunks).count("x") == 130  # one long token is cut hard


def test_split_document_normalises_to_nfc(analyzer: TextAnalyzer) -> None:
    (chunk,) = split_document("The cafe\u0301 opened today.", analyzer, chunk_chars=100)
    assert chunk.text == "The café opened today."


def test_split_document_of_blank_text_is_empty(analyzer: TextAnalyzer) -> None:
    assert split_document(" \n\n \t", analyzer, chunk_chars=100) == []


def test_split_document_rejects_a_nonpositive_limit(analyzer: TextAnalyzer) -> None:
    with pytest.raises(ConfigError, match="chunk_chars"):
        split_document("Hello there.", analyzer, chunk_chars=0)


def test_long_paragraphs_are_parsed_in_bounded_blocks() -> None:
    text = "First sentence here. " * 10 + "\n\n" + "y" * 25
    blocks = list(_blocks(text, 50))
    assert all(len(b) <= 50 for b in blocks)
    assert blocks[-1] == "y" * 25
    assert all(b.endswith("here.") for b in blocks[:-1])  # cut after a sentence end where one is near
    assert [len(b) for b in _blocks("z" * 120, 50)] == [50, 50, 20]


def test_text_over_the_parser_limit_is_refused(analyzer: TextAnalyzer) -> None:
    limit = analyzer.nlp.max_length
    assert limit >= TextConfig().max_segment_chars
    with pytest.raises(MediaLimitExceeded, match="text 1") as info:
        analyzer.analyze(["fine", "a" * (limit + 1)])
    assert info.value.code == ErrorCode.LIMIT_TEXT


def test_unknown_spacy_model_is_a_config_error_on_first_use() -> None:
    lazy = TextAnalyzer(TextConfig(spacy_model="no_such_model"))  # constructing loads nothing
    with pytest.raises(ConfigError, match="no_such_model"):
        lazy.analyze(["x"])
