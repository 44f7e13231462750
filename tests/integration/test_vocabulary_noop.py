"""The corpus step costs nothing on a run that changed no text: it reads no text row when `text` and
`vocabulary` are at the versions the last step left them, and reads again once anything touched them
(new text, an erasure, a changed vocabulary setting)."""

from __future__ import annotations

from pathlib import Path

from mmfs.config import config_from_dict
from mmfs.media.hashing import sha256_file
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store
from mmfs.store.erase import erase
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS

CONFIG = {"encoders": FAKE_ENCODERS, "index": {"auto": False}}


def _terms(store: Store) -> set[str]:
    return set(store.read("vocabulary", ["term"]).column("term").to_pylist())


def test_a_run_that_changed_no_text_reads_no_text_row(tmp_path: Path) -> None:
    data, store_dir = tmp_path / "data", tmp_path / "store"
    mf.write_text(data / "owls.txt", "Owls hunt at night over the harbour.")
    zebra = mf.write_text(data / "zebras.txt", "Zebras graze while the harbour sleeps.")
    cfg = config_from_dict(CONFIG)

    first = run_pipeline([str(data)], cfg, store_dir, show_progress=False).vocabulary
    assert first["action"] == "fitted" and first["rows_read"] == 2 and first["settled_at"]
    again = run_pipeline([str(data)], cfg, store_dir, show_progress=False).vocabulary
    assert again["action"] == "unchanged" and again["rows_read"] == again["rows_updated"] == 0
    assert again["vocab_version"] == first["vocab_version"] and again["terms"] == first["terms"]
    third = run_pipeline([str(data)], cfg, store_dir, show_progress=False).vocabulary  # still settled
    assert third["rows_read"] == 0

    store = Store(store_dir)
    assert "zebras" in _terms(store)
    erase(store, [sha256_file(zebra)])  # an erasure touches `text`: the next step reads and refits
    zebra.unlink()
    after_erase = run_pipeline([str(data)], cfg, store_dir, show_progress=False).vocabulary
    assert after_erase["rows_read"] == 1 and after_erase["action"] == "refit"
    assert "zebras" not in _terms(Store(store_dir)) and "owls" in _terms(Store(store_dir))

    changed = config_from_dict({**CONFIG, "text": {"ngram_max": 2}})  # another vocabulary: read again
    bigrams = run_pipeline([str(data)], changed, store_dir, show_progress=False).vocabulary
    assert bigrams["rows_read"] == 1 and bigrams["terms"] > after_erase["terms"]
    mf.write_text(data / "gulls.txt", "Gulls follow the ferry.")  # new text: read again
    grown = run_pipeline([str(data)], changed, store_dir, show_progress=False).vocabulary
    assert grown["rows_read"] == 2 and "gulls" in _terms(Store(store_dir))
