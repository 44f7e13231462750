"""PII redaction: e-mails, URLs, phone numbers by pattern, person names by spaCy NER, counted per type."""

from __future__ import annotations

import pytest

from mmfs.config import TextConfig
from mmfs.pipelines.enrich import Enricher
from mmfs.transforms.pii import placeholder_counts, redact_patterns

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
    assert out.counts == {"EMAIL": 2, "URL": 2, "PHONE": 2, "PERSON": 0}


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    from mmfs.config import PipelineConfig

    return Enricher(PipelineConfig(text=TextConfig(redact_pii=True)))


def test_person_names_are_replaced_using_spacy_entities(enricher: Enricher) -> None:
    from mmfs.transforms.pii import redact_batch

    (out,) = redact_batch([PLANTED], enricher._person_spans)
    assert "Thatcher" not in out.text and "John Smith" not in out.text
    assert out.text.startswith("Contact [PERSON] at [EMAIL] or [PHONE].")
    assert out.counts == {"EMAIL": 2, "URL": 2, "PHONE": 2, "PERSON": 2}
    assert placeholder_counts(out.text) == out.counts


def test_long_texts_reach_the_ner_in_pieces_with_offsets(enricher: Enricher) -> None:
    from mmfs.transforms.pii import pieces

    text = (
        ("filler words here " * 8000) + "\nJohn Smith met Margaret Thatcher in London. " + "more text " * 9000
    )
    parts = pieces(text, 100_000)
    assert len(parts) >= 3 and all(len(p) <= 100_000 for _, p in parts)
    assert "".join(p for _, p in parts) == text and all(text[o : o + len(p)] == p for o, p in parts)
    (spans,) = enricher._person_spans([text])
    assert {text[a:b] for a, b in spans} >= {"John Smith", "Margaret Thatcher"}
