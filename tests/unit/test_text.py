"""Captions (SRT/VTT/TXT), strict decoding, and spaCy/NLTK analysis of known sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs.config import TextConfig
from mmfs.errors import ConfigError, TextEncodingError, UnsupportedMedia
from mmfs.transforms.captions import decode_text_bytes, parse_srt, parse_vtt, read_sidecar
from mmfs.transforms.text import TextAnalyzer, split_document

SRT = (
    "1\r\n00:00:01,500 --> 00:00:03,000\r\nHello <i>there</i>\r\nsecond line\r\n\r\n"
    "2\r\n00:00:02,000 --> 00:00:04,250\r\n{\\an8}Overlapping cue\r\n\r\n"
    "3\r\n00:00:05,000 --> 00:00:04,000\r\nends before it starts\r\n"
)
VTT = (
    "WEBVTT - a header\n\nNOTE this is a comment\nspanning lines\n\n"
    "intro\n00:01.000 --> 00:02.500 align:start position:10%\n<c.yellow>Short</c> form\n\n"
    "01:00:00.000 --> 01:00:01.000\nAn hour in\n"
)


@pytest.fixture(scope="module")
def analyzer() -> TextAnalyzer:
    return TextAnalyzer(TextConfig())


def test_srt_times_text_and_bad_cues() -> None:
    cues = parse_srt(SRT)
    assert [(c.start_s, c.end_s) for c in cues] == [(1.5, 3.0), (2.0, 4.25)]
    assert [c.text for c in cues] == ["Hello there second line", "Overlapping cue"]
    assert {c.source for c in cues} == {"caption"}


def test_vtt_header_notes_settings_and_short_times() -> None:
    cues = parse_vtt(VTT)
    assert [(c.start_s, c.end_s, c.text) for c in cues] == [
        (1.0, 2.5, "Short form"),
        (3600.0, 3601.0, "An hour in"),
    ]


def test_strict_decoding() -> None:
    assert decode_text_bytes("\ufeffcafé".encode()) == "café"
    assert decode_text_bytes("naïve".encode("utf-16")) == "naïve"
    with pytest.raises(TextEncodingError, match=r"menu\.txt"):
        decode_text_bytes("café".encode("latin-1"), name="menu.txt")
    with pytest.raises(UnsupportedMedia):
        decode_text_bytes(b"\x1f\x8b\x08\x00\x00")


def test_txt_sidecar_is_untimed_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "clip.txt"
    path.write_text("First paragraph\nstill first.\n\nSecond one.\n")
    segs = read_sidecar(path)
    assert [s.text for s in segs] == ["First paragraph still first.", "Second one."]
    assert all(s.start_s is None for s in segs)


def test_tokens_lemmas_stems_stop_words(analyzer: TextAnalyzer) -> None:
    (a,) = analyzer.analyze(["The striped bats were hanging on their feet."])
    assert a.tokens[:4] == ["The", "striped", "bats", "were"]
    lemma = dict(zip(a.tokens, a.lemmas, strict=True))
    assert lemma["bats"] == "bat" and lemma["hanging"] == "hang" and lemma["feet"] == "foot"
    stem = dict(zip(a.tokens, a.stems, strict=True))
    assert stem["striped"] == "stripe" and stem["bats"] == "bat" and stem["hanging"] == "hang"
    stop = dict(zip(a.tokens, a.is_stop, strict=True))
    assert stop["The"] and stop["were"] and stop["on"] and stop["their"] and not stop["bats"]


def test_snowball_stemmer() -> None:
    (a,) = TextAnalyzer(TextConfig(stemmer="snowball")).analyze(["generously running"])
    assert a.stems == ["generous", "run"]


def test_sentences_and_chunks(analyzer: TextAnalyzer) -> None:
    assert analyzer.sentences("Dr. Watson arrived. Holmes was waiting!") == [
        "Dr. Watson arrived.",
        "Holmes was waiting!",
    ]
    text = " ".join(f"Sentence number {i} talks about the weather in some detail." for i in range(30))
    chunks = split_document(text, analyzer, chunk_chars=200)
    assert len(chunks) > 5 and all(len(c.text) <= 200 for c in chunks)
    assert " ".join(c.text for c in chunks) == text
    long_word_run = "word " * 100
    assert all(len(c.text) <= 50 for c in split_document(long_word_run, analyzer, chunk_chars=50))


def test_unknown_spacy_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no_such_model"):
        TextAnalyzer(TextConfig(spacy_model="no_such_model")).analyze(["x"])
