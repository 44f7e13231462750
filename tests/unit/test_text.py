"""spaCy tokens, lemmas, stop words and sentences plus NLTK stems, on known sentences; document chunking."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs.config import TextConfig
from mmfs.errors import ConfigError, ErrorCode, MediaLimitExceeded
from mmfs.transforms.text.tokens import TextAnalyzer, _blocks, split_document

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


def test_spacy_pos_tags_and_entities(analyzer: TextAnalyzer) -> None:
    text = "Sherlock Holmes lived in London with Dr. Watson."
    (a,) = analyzer.analyze([text])
    pos = dict(zip(a.tokens, a.pos or [], strict=True))
    assert (pos["lived"], pos["in"], pos["London"], pos["."]) == ("VERB", "ADP", "PROPN", "PUNCT")
    ents = {(e.text, e.label) for e in a.entities or []}
    assert ("London", "GPE") in ents and ("Holmes", "PERSON") in ents
    for e in a.entities or []:
        assert text[e.start_char : e.end_char] == e.text


def _nltk_data() -> list[str]:
    """The NLTK data this venv's set-up built, or a skip saying why it is absent."""
    from mmfs.transforms.text.nltk_data import search_paths

    if not any((p / "corpora" / "wordnet" / "lexnames").is_file() for p in search_paths()):
        pytest.skip("NLTK WordNet data not built (run `make nltk-data`): the ConfigError test covers absence")
    return []


@pytest.fixture(scope="module")
def nltk_analyzer() -> TextAnalyzer:
    _nltk_data()
    return TextAnalyzer(TextConfig(backend="nltk"))


def test_nltk_tokens_lemmas_stems_and_stop_words(nltk_analyzer: TextAnalyzer) -> None:
    (a,) = nltk_analyzer.analyze([BATS])
    assert a.tokens == ["The", "striped", "bats", "were", "hanging", "on", "their", "feet", "."]
    lemma = dict(zip(a.tokens, a.lemmas, strict=True))
    # no tagger: a noun lemma that changes the word first, else a verb lemma
    assert (lemma["bats"], lemma["feet"], lemma["were"], lemma["hanging"]) == ("bat", "foot", "be", "hang")
    stem = dict(zip(a.tokens, a.stems, strict=True))
    assert (stem["striped"], stem["bats"], stem["hanging"]) == ("stripe", "bat", "hang")
    stop = dict(zip(a.tokens, a.is_stop, strict=True))
    assert stop["The"] and stop["were"] and not stop["bats"]
    assert a.pos is None and a.entities is None  # NLTK has no tagger or NER data here


def test_nltk_treebank_tokens_and_snowball(nltk_analyzer: TextAnalyzer) -> None:
    (a,) = nltk_analyzer.analyze(["They didn't go generously running."])
    assert a.tokens == ["They", "did", "n't", "go", "generously", "running", "."]
    (s,) = TextAnalyzer(TextConfig(backend="nltk", stemmer="snowball")).analyze(["generously running"])
    assert s.stems == ["generous", "run"]


def test_nltk_punkt_sentences(nltk_analyzer: TextAnalyzer) -> None:
    text = "Dr. Watson arrived at noon. Mr. Holmes was waiting!\n\nA new paragraph\nwrapped here."
    assert nltk_analyzer.sentences(text) == [
        "Dr. Watson arrived at noon.",
        "Mr. Holmes was waiting!",
        "A new paragraph wrapped here.",
    ]


def test_backends_agree_on_tokens_of_plain_sentences(
    analyzer: TextAnalyzer, nltk_analyzer: TextAnalyzer
) -> None:
    text = "Owls hunt at night and sleep during the day."
    (spacy_a,) = analyzer.analyze([text])
    (nltk_a,) = nltk_analyzer.analyze([text])
    assert spacy_a.tokens == nltk_a.tokens and spacy_a.stems == nltk_a.stems


def test_nltk_without_wordnet_is_one_config_error_naming_the_fix(tmp_path: Path) -> None:
    from mmfs.transforms.text.nltk_backend import NltkBackend
    from mmfs.transforms.text.nltk_data import build_punkt, build_stopwords

    build_punkt(tmp_path)
    build_stopwords(tmp_path)  # everything but WordNet, in a directory searched first
    with pytest.raises(ConfigError, match=r"WordNet data not found.*make nltk-data") as info:
        NltkBackend("porter", [tmp_path], use_default_paths=False)
    assert info.value.code == ErrorCode.CONFIG_INVALID


def test_nltk_data_built_from_debian_wordnet_loads(tmp_path: Path) -> None:
    from mmfs.transforms.text.nltk_backend import NltkBackend
    from mmfs.transforms.text.nltk_data import DEBIAN_WORDNET, build_all

    if not (DEBIAN_WORDNET / "data.noun").is_file():
        pytest.skip("Debian's wordnet-base is not installed (make nltk-data installs it as root)")
    build_all(tmp_path)
    wordnet = tmp_path / "corpora" / "wordnet"
    assert not any(p.is_symlink() for p in wordnet.iterdir())  # copies: the venv stands alone
    backend = NltkBackend("porter", [tmp_path], use_default_paths=False)
    assert [backend.lemma(w) for w in ("geese", "ran", "mice")] == ["goose", "run", "mouse"]
