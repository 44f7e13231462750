"""Card numbers, IBANs and a first name by a contact detail never reach the store's bytes (text, tokens,
vocabulary, indexes), while dates and order numbers stay searchable."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs.config import PipelineConfig
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store

pytestmark = pytest.mark.slow

SECRETS = (
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
)
DOC = (
    "Please refund card 4111 1111 1111 1111 and the backup card 5500-0000-0000-0004 today.\n\n"
    "Transfer the deposit to DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432 by 15.01.2024.\n\n"
    "Ask Priya at priya.k@example.com about order #452188761."
)


def test_cards_ibans_and_names_by_contacts_appear_nowhere_in_the_store(tmp_path: Path) -> None:
    data, store_dir = tmp_path / "in", tmp_path / "store"
    data.mkdir()
    (data / "refunds.txt").write_text(DOC, encoding="utf-8")
    cfg = PipelineConfig.model_validate({"text": {"redact_pii": True}, "runner": {"isolate_decode": False}})
    run_pipeline([str(data)], cfg, store_dir, show_progress=False)
    text = " ".join(r["text"] for r in Store(store_dir).read("text").to_pylist())
    assert text.count("[CARD]") == 2 and text.count("[IBAN]") == 2 and "[PERSON] at [EMAIL]" in text
    assert "15.01.2024" in text and "452188761" in text  # a date and an order number are not phones
    needles = {s.encode() for s in SECRETS} | {s.replace(" ", "").replace("-", "").encode() for s in SECRETS}
    needles |= {b"Priya", b"priya", b"0532 0130", b"1111 1111"}
    for path in (p for p in store_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"{needle!r} found in {path}"
