"""PII redaction before storage: e-mails, URLs, IBANs, payment cards, phone numbers and person names.

E-mails, URLs, IBANs, cards and phones are found by pattern, in that order (an e-mail's domain is not
a URL; a card or an IBAN is never taken for a phone). Cards pass the Luhn check and IBANs the mod-97
check (`text.pii_numbers`); dates, year ranges and labelled order or reference numbers are not phones. A
capitalised first name right next to a contact detail ("ask Maria at [EMAIL]") is a person; other
person names are spaCy's PERSON entities, found on the text after the patterns were replaced. Each is
replaced by a typed placeholder (`[EMAIL]`, `[URL]`, `[IBAN]`, `[CARD]`, `[PHONE]`, `[PERSON]`), so
nothing downstream (tokens, embeddings, the vocabulary, full-text indexes) ever sees the original.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mmfs.transforms.text.pii_numbers import CARD, IBAN, iban_prefix, is_card, is_phone

PII_TYPES: tuple[str, ...] = ("EMAIL", "URL", "PHONE", "PERSON", "CARD", "IBAN")
# Unicode-aware (RFC 6531): `josé@exemple.fr` and `почта@пример.рф` are addresses too.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]", re.I)
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d[\d\s.-]{5,}\d(?!\w)")
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", _EMAIL),
    ("URL", _URL),
    ("IBAN", IBAN),
    ("CARD", CARD),
    ("PHONE", _PHONE),
)
_CONTACT = r"\[(?:EMAIL|PHONE)\]"
_NAME = r"[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?"
# A name just before a contact detail ("Maria at [EMAIL]", "Tom: [PHONE]"), or just after one
# ("[PHONE] (Tom)").
_NAME_BEFORE = re.compile(
    rf"\b((?:{_NAME}\s+){{0,2}}{_NAME})(?=(?:\s*[:,(/–-]\s*|\s+(?:at|on|via|by)\s+(?:the\s+)?){_CONTACT})"
)
_NAME_AFTER = re.compile(rf"(?<=\])(\s*(?:\(|,|–|-|/|\bfor\b|\bor\b\s+ask\s+(?:for\s+)?)\s*)({_NAME})\b")
# Capitalised words that sit next to a contact detail and are not names.
_NOT_NAMES = frozenset(
    {
        "email", "mail", "e-mail", "phone", "tel", "telephone", "mobile", "cell", "fax", "contact", "call",
        "text", "write", "reach", "support", "sales", "office", "info", "help", "helpdesk", "service",
        "customer", "us", "me", "address", "home", "work", "reception", "team", "hotline", "number",
        "whatsapp", "ring", "dial", "message", "questions", "details", "enquiries", "inquiries", "orders",
        "billing", "press", "media", "website", "web", "online", "or", "and", "the", "please", "thanks", "hi",
        "hello", "dear", "note", "ps", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
        "sunday", "january", "february", "march", "april", "may", "june", "july", "august", "september",
        "october", "november", "december", "today", "tomorrow", "tonight", "admin", "desk", "department",
        "manager", "owner", "landlord", "ceo", "hr", "it", "legal", "emergency", "urgent", "main", "direct",
        "personal", "private", "business", "fixed", "landline", "mr", "mrs", "ms", "dr", "prof",
        "ask", "tell", "ping", "see", "visit", "from", "to", "for", "with", "by", "attn", "attention", "cc",
        "regards", "cheers", "best", "signed", "yours", "sincerely", "kind", "warm",
    }
)  # fmt: skip


@dataclass
class Redacted:
    """Redacted text and how many of each PII type were replaced in it."""

    text: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PII_TYPES, 0))


def redact_patterns(text: str) -> Redacted:
    """Replace e-mails, URLs, IBANs, cards, phones and names next to them by placeholders, counting each."""
    out = Redacted(text)
    for kind, pattern in _PATTERNS:

        def replace(match: re.Match[str], kind: str = kind) -> str:
            found = match.group(0)
            if kind == "IBAN":
                valid = iban_prefix(found)
                if valid is None:
                    return found
                out.counts[kind] += 1
                return f"[{kind}]{found[len(valid) :]}"
            line = match.string[: match.start()].rsplit("\n", 1)[-1]
            if (kind == "CARD" and not is_card(found)) or (kind == "PHONE" and not is_phone(found, line)):
                return found
            out.counts[kind] += 1
            return f"[{kind}]"

        out.text = pattern.sub(replace, out.text)
    out.text = _redact_names_by_contacts(out.text, out.counts)
    return out


def _redact_names_by_contacts(text: str, counts: dict[str, int]) -> str:
    """A first name alone right before or after an e-mail or phone placeholder becomes `[PERSON]`."""

    def before(match: re.Match[str]) -> str:
        words = match.group(1).split()
        while words and words[0].lower() in _NOT_NAMES:  # "Contact Maria at": the name is the rest
            words.pop(0)
        if not words or words[-1].lower() in _NOT_NAMES:
            return match.group(0)
        counts["PERSON"] += 1
        head = match.group(1)[: len(match.group(1)) - len(" ".join(words))]
        return f"{head}[PERSON]"

    def after(match: re.Match[str]) -> str:
        if match.group(2).lower() in _NOT_NAMES or not match.string[: match.start()].endswith(
            ("[EMAIL]", "[PHONE]")
        ):
            return match.group(0)
        counts["PERSON"] += 1
        return f"{match.group(1)}[PERSON]"

    return _NAME_AFTER.sub(after, _NAME_BEFORE.sub(before, text))


def redact_persons(text: str, spans: list[tuple[int, int]], counts: dict[str, int]) -> str:
    """Replace the given (start, end) character spans of person names by `[PERSON]`; a span with a
    digit or a placeholder in it, or one that is a contact label ("Tel"), is the NER's mistake: kept."""
    pieces, last = [], 0
    for start, end in sorted(spans):
        if start < last or not _plausible_name(text[start:end]):
            continue
        pieces.append(text[last:start])
        pieces.append("[PERSON]")
        counts["PERSON"] += 1
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _plausible_name(span: str) -> bool:
    """Whether an NER person span can be a name: no digits, no placeholder, not a label word."""
    if any(ch.isdigit() for ch in span) or "[" in span:
        return False
    return span.strip(" .:,;").lower() not in _NOT_NAMES


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
