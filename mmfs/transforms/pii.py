"""PII redaction before storage: e-mail addresses, phone numbers, URLs and person names.

E-mails, URLs and phones are found by pattern, in that order (an e-mail's domain is not a URL);
person names are spaCy's PERSON entities, found on the text after the patterns were replaced. Each is
replaced by a typed placeholder (`[EMAIL]`, `[PHONE]`, `[URL]`, `[PERSON]`), so nothing downstream
(tokens, embeddings, the vocabulary, full-text indexes) ever sees the original.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

PII_TYPES: tuple[str, ...] = ("EMAIL", "URL", "PHONE", "PERSON")
# Unicode-aware (RFC 6531): `josé@exemple.fr` and `почта@пример.рф` are addresses too.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]", re.I)
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d[\d\s.-]{5,}\d(?!\w)")
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}")
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (("EMAIL", _EMAIL), ("URL", _URL), ("PHONE", _PHONE))


@dataclass
class Redacted:
    """Redacted text and how many of each PII type were replaced in it."""

    text: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PII_TYPES, 0))


def _is_phone(candidate: str) -> bool:
    """Whether a digit run is a phone number: 7 to 15 digits, not a date."""
    digits = sum(ch.isdigit() for ch in candidate)
    return 7 <= digits <= 15 and not _DATE_LIKE.fullmatch(candidate.strip())


def redact_patterns(text: str) -> Redacted:
    """Replace e-mails, URLs and phone numbers by their placeholders, counting each."""
    out = Redacted(text)
    for kind, pattern in _PATTERNS:

        def replace(match: re.Match[str], kind: str = kind) -> str:
            if kind == "PHONE" and not _is_phone(match.group(0)):
                return match.group(0)
            out.counts[kind] += 1
            return f"[{kind}]"

        out.text = pattern.sub(replace, out.text)
    return out


def redact_persons(text: str, spans: list[tuple[int, int]], counts: dict[str, int]) -> str:
    """Replace the given (start, end) character spans of person names by `[PERSON]`."""
    pieces, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            continue
        pieces.append(text[last:start])
        pieces.append("[PERSON]")
        counts["PERSON"] += 1
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def redact_batch(
    texts: list[str], person_spans: Callable[[list[str]], list[list[tuple[int, int]]]]
) -> list[Redacted]:
    """Redact texts: patterns first, then the person spans `person_spans` finds in what is left."""
    results = [redact_patterns(t) for t in texts]
    spans = person_spans([r.text for r in results])
    for result, found in zip(results, spans, strict=True):
        result.text = redact_persons(result.text, found, result.counts)
    return results


def pieces(text: str, limit: int) -> list[tuple[int, str]]:
    """`text` cut into pieces of at most `limit` characters at a line break or space, with offsets:
    what a model with a length limit (spaCy's NER) reads one at a time."""
    out, start = [], 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        cut = max(window.rfind("\n", limit // 2), window.rfind(" ", limit // 2))
        end = start + (cut + 1 if cut > 0 else limit)
        out.append((start, text[start:end]))
        start = end
    out.append((start, text[start:]))
    return out


def placeholder_counts(text: str) -> dict[str, int]:
    """How many placeholders of each type a (redacted) text holds: the `pii_counts` of one row."""
    return {kind: text.count(f"[{kind}]") for kind in PII_TYPES}
