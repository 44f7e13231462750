"""Text beyond ASCII English: accents, CJK, emoji and right-to-left scripts through cleaning,
language identification, PII redaction and both analysis backends, losing no character."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from mmfs.config import TextConfig
from mmfs.transforms.text.clean import LanguageIdentifier, clean_document
from mmfs.transforms.text.nltk_data import search_paths
from mmfs.transforms.text.pii import redact_patterns
from mmfs.transforms.text.tokens import TextAnalyzer

SAMPLES = {
    "fr": "Ça fait déjà longtemps que l'été est fini à Montréal.",
    "zh": "我每天早上在公园里散步，然后喝一杯咖啡。",
    "ja": "今日はとても良い天気なので、公園で本を読みました。",
    "ar": "تجلس القطة على السجادة بجانب النافذة كل صباح.",
    "he": "החתול יושב על השטיח ליד החלון בכל בוקר.",
    "en": "The barista smiled ☕ and handed over two cups 😀 of coffee.",
}


def _letters(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_language_is_identified_offline(lang: str) -> None:
    assert LanguageIdentifier.identify(SAMPLES[lang]) == lang


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_utf8_documents_round_trip_through_cleaning(lang: str) -> None:
    cleaned = clean_document(SAMPLES[lang].encode(), name=f"{lang}.txt")
    assert cleaned.text == unicodedata.normalize("NFKC", SAMPLES[lang]) and cleaned.charset == "utf-8"


def test_nfkc_folds_compatibility_forms_but_keeps_emoji_and_scripts() -> None:
    raw = "ﬁne ＡＢＣ ①  😀 مرحبا שלום 漢字"
    assert clean_document(raw.encode()).text == "fine ABC 1  😀 مرحبا שלום 漢字"


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_spacy_tokens_cover_every_character_in_logical_order(lang: str) -> None:
    analysis = TextAnalyzer(TextConfig()).analyze([SAMPLES[lang]])[0]
    assert "".join(analysis.tokens) == _letters(SAMPLES[lang])  # nothing dropped, nothing reordered
    assert len(analysis.lemmas) == len(analysis.stems) == len(analysis.is_stop) == len(analysis.tokens)


def test_spacy_keeps_emoji_as_their_own_tokens() -> None:
    tokens = TextAnalyzer(TextConfig()).analyze([SAMPLES["en"]])[0].tokens
    assert "☕" in tokens and "😀" in tokens and "coffee" in tokens


def test_pii_is_found_in_accented_and_right_to_left_text() -> None:
    text = (
        "Écrivez à josé@example.fr ou appelez le +33 1 23 45 67 89. البريد: info@example.org, "
        "почта: иван@пример.рф"
    )
    redacted = redact_patterns(text)
    assert redacted.text == "Écrivez à [EMAIL] ou appelez le [PHONE]. البريد: [EMAIL], почта: [EMAIL]"
    assert redacted.counts["EMAIL"] == 3 and redacted.counts["PHONE"] == 1


def _has_wordnet() -> bool:
    return any((p / "corpora" / "wordnet").is_dir() for p in search_paths())


@pytest.mark.skipif(not _has_wordnet(), reason="NLTK WordNet data not built here (make nltk-data)")
@pytest.mark.parametrize("lang", ["fr", "ar", "he"])
def test_nltk_tokens_keep_accented_and_right_to_left_words(lang: str) -> None:
    analysis = TextAnalyzer(TextConfig(backend="nltk")).analyze([SAMPLES[lang]])[0]
    words = [w.strip(".,") for w in SAMPLES[lang].split()]
    assert all(any(w in token or token in w for token in analysis.tokens) for w in words if w)
    assert _letters("".join(analysis.tokens)) == _letters(SAMPLES[lang]).replace("'", "'")


def test_latin1_file_is_decoded_with_its_charset(tmp_path: Path) -> None:
    path = tmp_path / "menu.txt"
    path.write_bytes("Crème brûlée, café noir et pâtisserie du jour.".encode("latin-1"))
    cleaned = clean_document(path.read_bytes(), name=path.name)
    assert cleaned.text == "Crème brûlée, café noir et pâtisserie du jour." and cleaned.charset == "cp1252"
