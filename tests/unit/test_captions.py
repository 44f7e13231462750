"""Sidecar captions: SRT/VTT cue parsing (malformed cues refused), strict decoding, .txt paragraphs."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mmfs.errors import CaptionFormatError, ErrorCode, TextEncodingError, UnsupportedMedia
from mmfs.transforms.text.captions import (
    SIDECAR_SUFFIXES,
    TextSegment,
    decode_text_bytes,
    parse_srt,
    parse_vtt,
    read_sidecar,
)

SRT = (
    "1\r\n00:00:01,500 --> 00:00:03,000\r\nHello there,\r\nsecond line\r\n\r\n"
    "2\r\n00:00:02.000 --> 00:00:04,250\r\n<i>Overlapping</i> {\\an8}cue\r\n\r\n"
    "3\r\n00:01:05,000 --> 01:00:00,000\r\n<b>Long</b>   one\r\n"
)

VTT = """WEBVTT - a header line
Kind: captions

NOTE this is a comment
spanning two lines

STYLE
::cue(.yellow) { color: yellow }

intro
00:01.000 --> 00:02.500 align:start position:10% line:0
<c.yellow>Short</c> form &amp; <v Roger>voice</v>

00:02.000 --> 00:03.000
Overlaps the intro

01:00:00.000 --> 01:00:01.000
An hour in
"""


def test_srt_times_texts_styling_stripped_and_overlaps_kept() -> None:
    cues = parse_srt(SRT)
    assert [(c.start_s, c.end_s) for c in cues] == [(1.5, 3.0), (2.0, 4.25), (65.0, 3600.0)]
    assert [c.text for c in cues] == ["Hello there, second line", "Overlapping cue", "Long one"]
    assert {c.source for c in cues} == {"caption"}
    assert cues[1].start_s < cues[0].end_s  # type: ignore[operator]


@pytest.mark.parametrize(
    ("block", "why"),
    [
        ("4\n00:00:09,000 --> 00:00:08,000\nends before it starts\n", "ends .* before it starts"),
        ("5\n00:00:75,000 --> 00:00:76,000\nseconds out of range\n", "out of range"),
        ("6\n00:00:01 --> 00:00:02,000\nno milliseconds\n", "malformed timing line"),
        ("7\njust text, no timing\n", "no timing line"),
    ],
)
def test_srt_malformed_cue_is_a_clear_error(block: str, why: str) -> None:
    good = "1\n00:00:00,000 --> 00:00:01,000\nfine\n\n"
    with pytest.raises(CaptionFormatError, match=why) as info:
        parse_srt(good + block)
    assert info.value.code == ErrorCode.CAPTION_MALFORMED and not info.value.retryable


def test_vtt_stray_block_after_header_is_malformed() -> None:
    with pytest.raises(CaptionFormatError, match="no timing line"):
        parse_vtt("WEBVTT\n\nNOTE fine\n\n00:00.000 --> 00:01.000\nok\n\nstray words\n")


def test_srt_without_trailing_newline_and_bare_cr() -> None:
    cues = parse_srt("1\r00:00:00,250 --> 00:00:01,000\rLast cue")
    assert cues == [TextSegment("Last cue", 0.25, 1.0, "caption")]


def test_vtt_header_notes_settings_short_times_and_overlaps() -> None:
    cues = parse_vtt(VTT)
    assert [(c.start_s, c.end_s, c.text) for c in cues] == [
        (1.0, 2.5, "Short form & voice"),
        (2.0, 3.0, "Overlaps the intro"),
        (3600.0, 3601.0, "An hour in"),
    ]
    assert cues[1].start_s < cues[0].end_s  # type: ignore[operator]


def test_vtt_header_glued_to_first_cue_keeps_the_cue() -> None:
    assert parse_vtt("WEBVTT\n00:00.000 --> 00:01.000\nglued") == [TextSegment("glued", 0.0, 1.0, "caption")]


def test_vtt_note_and_style_only_gives_nothing() -> None:
    assert parse_vtt("WEBVTT\n\nNOTE nothing here\n\nSTYLE\n::cue { color: red }\n") == []


def test_decode_strips_utf8_bom_and_reads_bom_utf16() -> None:
    assert decode_text_bytes("\ufeffcafé".encode()) == "café"
    assert decode_text_bytes(b"\xef\xbb\xbfcaf\xc3\xa9") == "café"
    assert decode_text_bytes("naïve".encode("utf-16")) == "naïve"
    assert decode_text_bytes(b"\xfe\xff" + "naïve".encode("utf-16-be")) == "naïve"
    assert decode_text_bytes(b"") == ""


def test_decode_falls_back_to_a_detected_charset() -> None:
    assert decode_text_bytes("café crème".encode("latin-1"), name="menu.txt") == "café crème"


def test_decode_refuses_broken_utf8_naming_the_file() -> None:
    with pytest.raises(TextEncodingError, match=r"menu\.txt.*broken UTF-8.*byte at 11") as info:
        decode_text_bytes("café crème".encode()[:-1] + b"\xff and more", name="menu.txt")
    assert info.value.code == ErrorCode.TEXT_ENCODING and not info.value.retryable


def test_decode_refuses_bad_utf16_after_a_bom() -> None:
    with pytest.raises(TextEncodingError, match="UTF-16"):
        decode_text_bytes(b"\xff\xfe\x00\xd8", name="lone_surrogate.srt")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (gzip.compress(b"1\n00:00:01,000 --> 00:00:02,000\nhi\n", mtime=0), "gzip"),
        (b"\x1f\x8b", "gzip"),
        (b"PK\x03\x04rest", "zip"),
        (b"%PDF-1.7\n", "PDF"),
        (b"plain start\x00then binary", "NUL"),
        ("utf-16 without bom".encode("utf-16-le"), "NUL"),
    ],
)
def test_decode_refuses_binary_misnamed_as_text(data: bytes, kind: str) -> None:
    with pytest.raises(UnsupportedMedia, match=kind) as info:
        decode_text_bytes(data, name="subs.srt")
    assert "subs.srt" in str(info.value) and info.value.code == ErrorCode.UNSUPPORTED_KIND


def test_text_that_starts_like_a_magic_number_is_still_text() -> None:
    assert decode_text_bytes(b"BZh is not bzip2 without its block magic") == (
        "BZh is not bzip2 without its block magic"
    )


def test_txt_sidecar_is_untimed_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "clip.txt"
    path.write_bytes(b"First paragraph\r\nstill first.\r\n \r\n\r\nSecond  one.\r\n")
    segs = read_sidecar(path)
    assert segs == [
        TextSegment("First paragraph still first.", None, None, "caption", "utf-8"),
        TextSegment("Second one.", None, None, "caption", "utf-8"),
    ]


def test_sidecars_dispatch_on_suffix(tmp_path: Path) -> None:
    srt, vtt = tmp_path / "a.SRT", tmp_path / "a.vtt"
    srt.write_bytes(SRT.encode("utf-16"))
    vtt.write_text(VTT, encoding="utf-8")
    assert [c.start_s for c in read_sidecar(srt)] == [1.5, 2.0, 65.0]
    assert [c.text for c in read_sidecar(vtt)][-1] == "An hour in"
    assert set(SIDECAR_SUFFIXES) == {".srt", ".vtt", ".txt"}


def test_sidecar_with_unknown_suffix_or_broken_utf8_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "a.ass"
    other.write_text("[Script Info]\n")
    with pytest.raises(UnsupportedMedia, match=r"a\.ass"):
        read_sidecar(other)
    bad = tmp_path / "bad.txt"
    bad.write_bytes("résumé".encode() + b"\x80")
    with pytest.raises(TextEncodingError, match=r"bad\.txt"):
        read_sidecar(bad)


def test_latin1_sidecar_records_its_charset(tmp_path: Path) -> None:
    srt = tmp_path / "clip.srt"
    srt.write_bytes("1\n00:00:00,000 --> 00:00:01,500\nUn café près de la fenêtre.\n".encode("latin-1"))
    assert read_sidecar(srt) == [TextSegment("Un café près de la fenêtre.", 0.0, 1.5, "caption", "cp1252")]


def test_caption_text_is_nfkc_normalised() -> None:
    (cue,) = parse_srt("1\n00:00:00,000 --> 00:00:01,000\ncafe\u0301 \ufb01ne \u2460\n")
    assert cue.text == "café fine 1" and len(cue.text) == 11
