"""Clean input: strict UTF-8, BOMs, detected charsets, broken bytes refused, HTML, NFKC, language."""

from __future__ import annotations

import pytest

from mmfs.errors import ErrorCode, TextEncodingError, UnsupportedMedia
from mmfs.transforms.text.clean import (
    LanguageIdentifier,
    clean_document,
    decode_text,
    looks_like_html,
    strip_html,
)


@pytest.mark.parametrize(
    ("data", "text", "charset"),
    [
        ("naïve café".encode(), "naïve café", "utf-8"),
        (b"\xef\xbb\xbfBOM first", "BOM first", "utf-8"),
        ("naïve".encode("utf-16"), "naïve", "utf-16"),
        ("Ärger über Öl, süß und groß.".encode("latin-1"), "Ärger über Öl, süß und groß.", "cp1252"),
        (
            "Привет, как дела? Это тест на кодировку.".encode("cp1251"),
            "Привет, как дела? Это тест на кодировку.",
            "cp1251",
        ),
        ("これは日本語のテキストです。".encode("shift_jis"), "これは日本語のテキストです。", "cp932"),
    ],
)
def test_decode_records_the_charset(data: bytes, text: str, charset: str) -> None:
    decoded = decode_text(data)
    assert (decoded.text, decoded.charset) == (text, charset)


@pytest.mark.parametrize(
    "data",
    [
        "résumé".encode() + b"\x80",  # UTF-8 with one stray byte: never re-read as another code page
        b"good \xc3\xa9 then \xff broken",
        b"\xef\xbb\xbfBOM says UTF-8 \xff",
    ],
)
def test_broken_utf8_is_a_text_encoding_error(data: bytes) -> None:
    with pytest.raises(TextEncodingError, match=r"notes\.txt") as info:
        decode_text(data, name="notes.txt")
    assert info.value.code == ErrorCode.TEXT_ENCODING


def test_binary_is_refused_before_decoding() -> None:
    with pytest.raises(UnsupportedMedia, match="gzip"):
        decode_text(b"\x1f\x8b\x08\x00rest")


def test_html_is_stripped_scripts_and_styles_dropped() -> None:
    page = (
        "<!-- saved --><!DOCTYPE html><html><head><title>Owls</title><style>p {color: red}</style>"
        "<script>var secret = 1;</script></head><body><h1>Night birds</h1><p>Owls &amp; bats"
        " hunt<br>at night.</p><ul><li>Barn owl</li><li>Tawny&nbsp;owl</li></ul></body></html>"
    )
    assert looks_like_html(page) and not looks_like_html("a < b and b > c")
    assert strip_html(page) == "Owls\n\nNight birds\n\nOwls & bats hunt\n\nat night.\n\nBarn owl\n\nTawny owl"


def test_clean_document_normalises_to_nfkc_and_flags_html() -> None:
    clean = clean_document("<p>\ufb01ne \u2460 cafe\u0301</p>".encode(), suffix=".html")
    assert (clean.text, clean.charset, clean.html) == ("fine 1 café", "utf-8", True)
    plain = clean_document(b"<b> is just text here")
    assert plain.text == "<b> is just text here" and not plain.html


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("The striped bats were hanging on their feet.", "en"),
        ("Le chat dort sur la table depuis ce matin.", "fr"),
        ("Der Hund schläft seit heute Morgen unter dem Tisch.", "de"),
        ("El perro duerme debajo de la mesa desde esta mañana.", "es"),
        ("1234 5678 !!", None),
    ],
)
def test_language_is_identified_offline(text: str, lang: str | None) -> None:
    assert LanguageIdentifier.identify(text) == lang
