"""Clean input text: strict decoding with a detected charset, HTML stripped, NFKC, language identified.

Decoding order: binary formats mis-named as text are refused; a BOM picks UTF-8/16/32; then strict
UTF-8; then charset-normalizer's best guess, recorded on the row. Bytes that are broken UTF-8 (valid
multi-byte sequences beside invalid ones) or that no charset explains are refused with
TEXT_ENCODING: a silently dropped or replaced character would corrupt what trainers read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser

from mmfs.errors import TextEncodingError, UnsupportedMedia
from mmfs.transforms.text.language import LanguageGuess
from mmfs.transforms.text.language import identify as identify_language

# Magic numbers of formats that are sometimes mis-named .txt (RELIABILITY item 21).
_BINARY_MAGIC: tuple[tuple[re.Pattern[bytes], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), kind)
    for pattern, kind in (
        (rb"\A\x1f\x8b", "gzip"),
        (rb"\APK\x03\x04", "zip"),
        (rb"\A\x28\xb5\x2f\xfd", "zstd"),
        (rb"\A\xfd7zXZ\x00", "xz"),
        (rb"\ABZh[1-9]1AY&SY", "bzip2"),
        (rb"\A%PDF-", "PDF"),
        (rb"\A\x7fELF", "ELF"),
        (rb"\A\x89PNG\r\n\x1a\n", "PNG"),
        (rb"\A\xff\xd8\xff", "JPEG"),
    )
)
# Longest first: the UTF-32 LE BOM begins with the UTF-16 LE BOM.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_CODEC_NAMES = {"utf-32": "UTF-32", "utf-16": "UTF-16", "utf-8-sig": "UTF-8"}
_CHAOS_TOLERANCE = 0.1  # charset-normalizer "mess" within which Windows-1252 is preferred
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_HTML_START = re.compile(r"\A\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)[\s>]", re.I | re.S)
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "table", "section", "article", "header"}
    | {"footer", "h1", "h2", "h3", "h4", "h5", "h6", "title", "blockquote", "pre", "hr", "dd", "dt"}
)
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg"})


@dataclass(frozen=True)
class DecodedText:
    """Text decoded from bytes and the charset it was decoded with (e.g. `utf-8`, `cp1252`)."""

    text: str
    charset: str


@dataclass(frozen=True)
class CleanText:
    """A document after decoding, HTML stripping and NFKC normalisation."""

    text: str
    charset: str
    html: bool


def binary_kind(data: bytes) -> str | None:
    """The name of the binary format `data` starts like, or None when it may be text."""
    return next((kind for pattern, kind in _BINARY_MAGIC if pattern.match(data)), None)


def decode_text(data: bytes, *, name: str = "") -> DecodedText:
    """Strict decode (BOM, then UTF-8, then a detected charset); refuses binary and undecodable bytes."""
    label = name or "text"
    kind = binary_kind(data)
    if kind is not None:
        raise UnsupportedMedia(f"{label}: {kind} data, not text")
    codec = next((codec for bom, codec in _BOMS if data.startswith(bom)), "utf-8-sig")
    if codec == "utf-8-sig" and b"\x00" in data:
        raise UnsupportedMedia(f"{label}: contains NUL bytes (binary, or UTF-16 without a BOM), not text")
    try:
        text = data.decode(codec)  # each codec consumes its BOM
        charset = "utf-8" if codec == "utf-8-sig" else codec
    except UnicodeDecodeError as err:
        if codec != "utf-8-sig" or data.startswith(b"\xef\xbb\xbf"):
            raise TextEncodingError(f"{label}: not valid {_CODEC_NAMES[codec]} at byte {err.start}") from None
        text, charset = _detected(data, label, err.start)
    if "\x00" in text:
        raise UnsupportedMedia(f"{label}: contains NUL characters, not text")
    return DecodedText(text, charset)


def _detected(data: bytes, label: str, bad_at: int) -> tuple[str, str]:
    """Decode with charset-normalizer's best guess, unless the bytes are broken UTF-8 or unexplained."""
    if _mostly_utf8(data):
        raise TextEncodingError(f"{label}: broken UTF-8 (invalid byte at {bad_at} beside valid UTF-8)")
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise TextEncodingError(f"{label}: not valid UTF-8 at byte {bad_at}, and no charset explains it")
    best = min(matches, key=lambda m: (m.chaos, -m.coherence))
    # Short texts nearly tie between many code pages; the most common one (Windows-1252) wins those.
    near = {e for m in matches if m.chaos <= best.chaos + _CHAOS_TOLERANCE for e in m.could_be_from_charset}
    charset = ("cp1252" if "cp1252" in near else str(best.encoding)).replace("_", "-")
    try:
        return data.decode(charset), charset  # strict: the guess must decode every byte
    except (UnicodeDecodeError, LookupError):
        raise TextEncodingError(f"{label}: not valid UTF-8 nor {charset} at byte {bad_at}") from None


def _mostly_utf8(data: bytes) -> bool:
    """Whether the bytes are UTF-8 with a few broken bytes: at least as many valid multi-byte sequences
    as invalid bytes. A legacy code page only now and then happens to look like UTF-8."""
    valid = sum(1 for _ in _UTF8_MULTIBYTE.finditer(data))
    invalid = data.decode("utf-8", errors="replace").count("\ufffd") - data.count("\ufffd".encode())
    return valid > 0 and valid >= invalid


def looks_like_html(text: str, *, suffix: str = "") -> bool:
    """Whether a document is HTML: an .html/.htm name, or a doctype/html/head/body tag first."""
    return suffix.lower() in (".html", ".htm", ".xhtml") or bool(_HTML_START.match(text[:4096]))


class _TextExtractor(HTMLParser):
    """Collects the visible text of an HTML page; block elements become line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Enter a skipped element, or break the line before a block."""
        if tag in _SKIPPED_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        """Leave a skipped element, or break the line after a block."""
        if tag in _SKIPPED_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        """Keep text outside scripts and styles."""
        if not self._skip:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """The visible text of an HTML document, entities decoded, one blank line between blocks."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    paragraphs = (" ".join(p.split()) for p in "".join(parser.parts).split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def clean_document(data: bytes, *, name: str = "", suffix: str = "") -> CleanText:
    """Decode strictly, strip HTML when the document is HTML, then NFKC-normalise."""
    decoded = decode_text(data, name=name)
    is_html = looks_like_html(decoded.text, suffix=suffix)
    text = strip_html(decoded.text) if is_html else decoded.text
    return CleanText(unicodedata.normalize("NFKC", text), decoded.charset, is_html)


class LanguageIdentifier:
    """The language of a text (`transforms/text/language.py`: py3langid, corrected on short texts)."""

    @staticmethod
    def identify(text: str) -> str | None:
        """ISO 639-1 code of the text's language, or None when there are no letters to judge by."""
        guess = identify_language(text)
        return guess.code if guess is not None else None

    @staticmethod
    def identify_scored(text: str) -> LanguageGuess | None:
        """The language and how confident the guess is (0 to 1); None without letters."""
        return identify_language(text)
