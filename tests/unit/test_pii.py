"""PII redaction: e-mails, URLs, IBANs, cards, phone numbers by pattern, person names by spaCy NER and next
to contact details, counted per type; precision and recall on a labelled set of generated sentences."""

from __future__ import annotations

import pytest

from mmfs.config import TextConfig
from mmfs.stages.text import TextStage
from mmfs.transforms.text.pii import placeholder_counts, redact_patterns
from mmfs.transforms.text.pii_numbers import iban_valid, luhn_valid
from tests import pii_corpus

# Floors on the labelled set (tests/pii_corpus.py, 240 sentences, 280 planted PII spans). Measured:
# patterns alone 1.00 / 1.00, with spaCy's names 1.00 / 1.00; before cards, IBANs, labelled
# identifiers and names by contacts: 0.23 / 0.43 and 0.26 / 0.53.
MIN_PRECISION, MIN_RECALL = 0.95, 0.95

PLANTED = (
    "Contact Margaret Thatcher at maggie.t@example.co.uk or +44 20 7946 0958. "
    "See https://example.org/about?x=1 and www.acme-widgets.com. Call (555) 123-4567. "
    "John Smith wrote to jane_doe99@mail.example.com on 2024-01-15 about page 12.5 of the 1999 report."
)


def test_patterns_replace_emails_urls_and_phones_but_not_dates_or_numbers() -> None:
    out = redact_patterns(PLANTED)
    for secret in (
        "maggie.t@",
        "example.co.uk",
        "7946",
        "example.org",
        "acme-widgets",
        "123-4567",
        "jane_doe99",
    ):
        assert secret not in out.text
    assert "2024-01-15" in out.text and "12.5" in out.text and "1999" in out.text
    assert "Margaret Thatcher" not in out.text  # a name right before a contact detail
    assert out.counts == {"EMAIL": 2, "URL": 2, "PHONE": 2, "PERSON": 1, "CARD": 0, "IBAN": 0}


@pytest.fixture(scope="module")
def enricher() -> TextStage:
    from mmfs.config import PipelineConfig
    from mmfs.transforms.text.tokens import TextAnalyzer

    cfg = PipelineConfig(text=TextConfig(redact_pii=True))
    return TextStage(cfg, TextAnalyzer(cfg.text), None)


def test_person_names_are_replaced_using_spacy_entities(enricher: TextStage) -> None:
    from mmfs.transforms.text.pii import redact_batch

    (out,) = redact_batch([PLANTED], enricher.person_spans)
    assert "Thatcher" not in out.text and "John Smith" not in out.text
    assert out.text.startswith("Contact [PERSON] at [EMAIL] or [PHONE].")
    assert out.counts == {"EMAIL": 2, "URL": 2, "PHONE": 2, "PERSON": 2, "CARD": 0, "IBAN": 0}
    assert placeholder_counts(out.text) == out.counts


def test_long_texts_reach_the_ner_in_pieces_with_offsets(enricher: TextStage) -> None:
    from mmfs.transforms.text.pii import pieces

    text = (
        ("filler words here " * 8000) + "\nJohn Smith met Margaret Thatcher in London. " + "more text " * 9000
    )
    parts = pieces(text, 100_000)
    assert len(parts) >= 3 and all(len(p) <= 100_000 for _, p in parts)
    assert "".join(p for _, p in parts) == text and all(text[o : o + len(p)] == p for o, p in parts)
    (spans,) = enricher.person_spans([text])
    assert {text[a:b] for a, b in spans} >= {"John Smith", "Margaret Thatcher"}


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "3782 822463 10005",
        "5500 0000 0000 0004",
    ],
)
def test_card_numbers_are_redacted_as_cards_not_phones(number: str) -> None:
    out = redact_patterns(f"Charge {number} today.")
    assert out.text == "Charge [CARD] today." and out.counts["CARD"] == 1 and out.counts["PHONE"] == 0


def test_only_numbers_passing_the_luhn_check_are_cards() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    out = redact_patterns("Serial 4111 1111 1111 1112 is not a card.")
    assert "4111 1111 1111 1112" in out.text and out.counts["CARD"] == 0


@pytest.mark.parametrize(
    "iban", ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "NL91 ABNA 0417 1643 00"]
)
def test_ibans_are_redacted_as_such_and_checked_mod_97(iban: str) -> None:
    assert iban_valid(iban.replace(" ", ""))
    out = redact_patterns(f"Pay to {iban} AND keep the receipt.")
    assert out.text == "Pay to [IBAN] AND keep the receipt." and out.counts["IBAN"] == 1
    broken = iban[:2] + "00" + iban[4:]
    kept = redact_patterns(f"Test account {broken} here.")
    assert broken in kept.text and kept.counts["IBAN"] == kept.counts["PHONE"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "Delivered on 15.01.2024 and 2024/01/15.",
        "It ran from 1999-2004.",
        "Your order #452188761 is on its way.",
        "Order No. 4521 8876 12 arrives soon.",
        "See invoice INV-2024-000123.",
        "Quote ref 1234-5678-9012 please.",
        "tracking number 1234567890 shipped",
    ],
)
def test_dates_and_order_numbers_are_not_phones(text: str) -> None:
    assert redact_patterns(text).text == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ask Maria at maria.k@example.com.", "Ask [PERSON] at [EMAIL]."),
        ("Tom: +1 415 555 0199", "[PERSON]: [PHONE]"),
        ("Questions? Write to help@example.org (Anna).", "Questions? Write to [EMAIL] ([PERSON])."),
        ("Email: info@example.com", "Email: [EMAIL]"),
        ("Call us at 020 7946 0958.", "Call us at [PHONE]."),
    ],
)
def test_a_first_name_alone_next_to_a_contact_detail_is_redacted(text: str, expected: str) -> None:
    assert redact_patterns(text).text == expected


def test_precision_and_recall_of_the_patterns_on_a_labelled_set() -> None:
    sentences = pii_corpus.corpus()
    assert len(sentences) >= 200
    precision, recall, counts = pii_corpus.score(sentences, [redact_patterns(s.text).text for s in sentences])
    assert precision >= MIN_PRECISION and recall >= MIN_RECALL, counts


def test_precision_and_recall_with_spacy_names_on_a_labelled_set(enricher: TextStage) -> None:
    """The NER's person spans are added on top: its mistakes (a digit, a label word) are not names."""
    from mmfs.transforms.text.pii import redact_batch

    sentences = pii_corpus.corpus()
    out = redact_batch([s.text for s in sentences], enricher.person_spans)
    precision, recall, counts = pii_corpus.score(sentences, [r.text for r in out])
    assert precision >= MIN_PRECISION and recall >= MIN_RECALL, counts
