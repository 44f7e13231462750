"""Which digit runs are PII, and of what kind: payment cards (Luhn), IBANs (mod 97), phones, or neither.

A run of digits in text is a card number only when its check digit says so, an IBAN only when its
mod-97 check and its country's length agree, and a phone only when it is not a date, a year range,
or a number labelled as an order, invoice, reference or tracking number. Used by `pii`.
"""

from __future__ import annotations

import re

# Separators inside a card number: single spaces or dashes between digit groups (13 to 19 digits).
CARD = re.compile(r"(?<![\w+/.-])\d(?:[ -]?\d){12,18}(?![\w/]|[.,-]\d)")
# Country code, check digits, then the account in groups (spaces optional); trimmed by `iban_prefix`.
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
# IBAN length per country (the common ones; others: 15 to 34 characters).
IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27, "GB": 22,
    "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "RO": 24, "SE": 24, "SI": 19, "SK": 24, "TR": 26,
}  # fmt: skip
_DATE = re.compile(
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{1,2}:\d{2})?"  # 2024-01-15, 2024/01/15, 2024.01.15
    r"|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"  # 15/01/2024, 15.01.24, 15-01-2024
    r"|(?:19|20)\d{2}\s?[-–]\s?(?:19|20)\d{2}"  # a year range, 1999-2004
)
# Words that make the number after them an identifier, not a phone: "order #", "invoice no.", ...
_ID_LABEL = re.compile(
    r"\b(?:order|invoice|inv|ref|reference|ticket|tracking|case|account|acct|customer|client|po|item|sku|"
    r"serial|batch|booking|confirmation|transaction|receipt|parcel|shipment|claim|policy|id|no|nr|number)"
    r"\.?\s*(?:no\.?|nr\.?|number|num\.?|id|code)?\s*[#:]?\s*$",
    re.I,
)
# INV-2024-000123, PO-4521887, or the digits of an IBAN-shaped account that failed its check: a code
_CODE_PREFIX = re.compile(r"[A-Za-z]-$|\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4})* ?$")
_PHONE_LABEL = re.compile(
    r"\b(?:tel|phone|call|mobile|cell|fax|whatsapp|ring|text|dial)\w*\.?\s*(?:number|no\.?|nr\.?)?"
    r"\s*(?:me|us|him|her|them|\w+)?\s*(?:on|at)?\s*[:#]?\s*$",
    re.I,
)


def luhn_valid(digits: str) -> bool:
    """The Luhn check of a card number (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card(candidate: str) -> bool:
    """13 to 19 digits, in groups of at least 3 when separated, passing the Luhn check."""
    digits = re.sub(r"[ -]", "", candidate)
    groups = re.split(r"[ -]", candidate)
    if not 13 <= len(digits) <= 19 or (len(groups) > 1 and min(len(g) for g in groups) < 3):
        return False
    return digits[0] != "0" and luhn_valid(digits)


def iban_valid(compact: str) -> bool:
    """The ISO 13616 mod-97 check, with the country's length where it is known."""
    if IBAN_LENGTHS.get(compact[:2], len(compact)) != len(compact) or not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def iban_prefix(candidate: str) -> str | None:
    """The longest valid IBAN that `candidate` starts with (a trailing word may have been caught)."""
    compact_positions = [i for i, ch in enumerate(candidate) if ch != " "]
    compact = candidate.replace(" ", "")
    for length in range(min(len(compact), 34), 14, -1):
        if iban_valid(compact[:length]):
            return candidate[: compact_positions[length - 1] + 1]
    return None


def is_phone(candidate: str, before: str) -> bool:
    """7 to 15 digits that are not a date, a year range, or a labelled identifier (`before` is the
    text preceding the candidate on its line)."""
    digits = sum(ch.isdigit() for ch in candidate)
    if not 7 <= digits <= 15:
        return False
    text = candidate.strip()
    context = before[-40:]
    if _DATE.fullmatch(text) or (_ID_LABEL.search(context) and not _PHONE_LABEL.search(context)):
        return False
    return not before.rstrip().endswith("#") and not _CODE_PREFIX.search(before)
