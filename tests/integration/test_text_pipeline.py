"""Text in depth through `mmfs run`: PII never reaches the store, the corpus vocabulary, token chunks,
charset and language columns, broken UTF-8 quarantined, and the NLTK backend end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs.config import PipelineConfig, TextConfig
from mmfs.errors import ErrorCode
from mmfs.pipelines.run import run_pipeline
from mmfs.report import run_report, run_text
from mmfs.store.db import Store
from mmfs.store.documents import document_embedding

SECRETS = (
    "maggie.t@example.co.uk",
    "+44 20 7946 0958",
    "https://example.org/private/page",
    "Margaret Thatcher",
    "(555) 123-4567",
    "jane_doe99@mail.example.com",
    "John Smith",
    "4111 1111 1111 1111",
    "GB82 WEST 1234 5698 7654 32",
)
PII_DOC = (
    "Contact Margaret Thatcher at maggie.t@example.co.uk or +44 20 7946 0958 today.\n\n"
    "The notes are at https://example.org/private/page for the board.\n\n"
    "John Smith wrote to jane_doe99@mail.example.com and asked her to call (555) 123-4567.\n\n"
    "The deposit came from card 4111 1111 1111 1111, the rest from GB82 WEST 1234 5698 7654 32."
)
OWLS = "Owls hunt at night. The striped bats were hanging on their feet. Owls sleep during the day."
BATS = "Bats hunt moths at dusk. A bat sleeps upside down."


def _cfg(**text: object) -> PipelineConfig:
    return PipelineConfig.model_validate({"text": text, "runner": {"isolate_decode": False}})


def _texts(store: Store) -> list[dict[str, object]]:
    return store.read("text").to_pylist()


def test_planted_pii_appears_nowhere_in_the_store(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "memo.txt").write_text(PII_DOC, encoding="utf-8")
    (data / "page.html").write_text(f"<html><body><p>{PII_DOC}</p></body></html>", encoding="utf-8")
    store_dir = tmp_path / "store"
    run_pipeline([str(data)], _cfg(redact_pii=True), store_dir, show_progress=False)
    rows = _texts(Store(store_dir))
    assert rows and all("[EMAIL]" in r["text"] and "[PERSON]" in r["text"] for r in rows)  # type: ignore[operator]
    kinds = ("email", "url", "phone", "person", "card", "iban")
    totals = {k: sum(r["pii_counts"][k] for r in rows) for k in kinds}  # type: ignore[index]
    assert totals == {"email": 4, "url": 2, "phone": 4, "person": 4, "card": 2, "iban": 2}
    files = [p for p in store_dir.rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        data_bytes = path.read_bytes()
        for secret in SECRETS:
            for needle in {secret, secret.lower(), *secret.split()[-1:]}:
                if len(needle) > 4:
                    assert needle.encode() not in data_bytes, f"{needle!r} found in {path}"


def test_vocabulary_refit_unchanged_extend_and_frozen(tmp_path: Path) -> None:
    data, store_dir = tmp_path / "in", tmp_path / "store"
    data.mkdir()
    (data / "owls.txt").write_text(OWLS, encoding="utf-8")
    first = run_pipeline([str(data)], _cfg(ngram_max=2), store_dir, show_progress=False)
    assert first.vocabulary["action"] == "fitted"
    store = Store(store_dir)
    vocab = {r["term"]: r for r in store.read("vocabulary").to_pylist()}
    assert "owls hunt" in vocab and vocab["owls"]["df"] == 1
    (row,) = _texts(store)
    terms = [next(t for t, v in vocab.items() if v["term_id"] == i) for i in row["bow_indices"]]  # type: ignore[union-attr]
    assert terms == sorted(terms, key=lambda t: vocab[t]["term_id"]) and "owls" in terms
    assert dict(zip(terms, row["bow_counts"], strict=True))["owls"] == 2.0  # type: ignore[arg-type]
    versions = store.versions()

    again = run_pipeline([str(data)], _cfg(ngram_max=2), store_dir, show_progress=False)
    assert again.vocabulary["action"] == "unchanged" and again.vocabulary["rows_updated"] == 0
    assert Store(store_dir).versions()["vocabulary"] == versions["vocabulary"]
    assert Store(store_dir).versions()["text"] == versions["text"]

    (data / "bats.txt").write_text(BATS, encoding="utf-8")
    extended = run_pipeline(
        [str(data)], _cfg(ngram_max=2, vocabulary="extend"), store_dir, show_progress=False
    )
    assert extended.vocabulary["action"] == "extended" and extended.vocabulary["new_terms"] > 0
    after = {r["term"]: r for r in Store(store_dir).read("vocabulary").to_pylist()}
    assert all(after[t]["term_id"] == v["term_id"] for t, v in vocab.items())  # old ids kept
    assert after["hunt"]["df"] == 2 and after["moths"]["term_id"] >= len(vocab)
    assert {r["vocab_version"] for r in _texts(Store(store_dir))} == {after["hunt"]["vocab_version"]}

    (data / "zebra.txt").write_text("Zebras graze while owls sleep.", encoding="utf-8")
    frozen = run_pipeline([str(data)], _cfg(ngram_max=2, vocabulary="frozen"), store_dir, show_progress=False)
    assert frozen.vocabulary["action"] == "frozen" and frozen.vocabulary["rows_updated"] == 1
    final = {r["term"]: r for r in Store(store_dir).read("vocabulary").to_pylist()}
    assert "zebras" not in final and final.keys() == after.keys()
    (zebra,) = [r for r in _texts(Store(store_dir)) if str(r["text"]).startswith("Zebras")]
    known = {t for t, v in final.items() if v["term_id"] in zebra["bow_indices"]}  # type: ignore[operator]
    assert known == {
        "owls",
        "sleep",
        "owls sleep",
    }  # "zebras", "graze", "while": out of the frozen vocabulary

    refit = run_pipeline([str(data)], _cfg(ngram_max=2), store_dir, show_progress=False)
    assert refit.vocabulary["action"] == "refit" and "zebras" in {
        r["term"] for r in Store(store_dir).read("vocabulary").to_pylist()
    }
    runs = Store(store_dir).read("runs", ["vocabulary"]).to_pylist()
    assert any('"action": "frozen"' in (r["vocabulary"] or "") for r in runs)
    assert "vocabulary (frozen): frozen" in run_text(frozen)
    assert run_report(Store(store_dir), refit.run_id)["vocabulary"]["action"] == "refit"


def test_long_document_chunks_fit_the_encoder_and_average_to_a_document_vector(tmp_path: Path) -> None:
    from mmfs.encoders.text_minilm import MiniLMTextEncoder

    data, store_dir = tmp_path / "in", tmp_path / "store"
    data.mkdir()
    long_text = " ".join(
        f"Paragraph sentence {i} tells of owls, bats and the moon over the hills." for i in range(120)
    )
    (data / "long.txt").write_text(long_text, encoding="utf-8")
    run_pipeline([str(data)], _cfg(chunk_overlap_tokens=16), store_dir, show_progress=False)
    store = Store(store_dir)
    rows = sorted(_texts(store), key=lambda r: r["segment_index"])  # type: ignore[arg-type, return-value]
    tokenizer = MiniLMTextEncoder(device="cpu").tokenizer()
    counts = [len(tokenizer(r["text"], add_special_tokens=False)["input_ids"]) for r in rows]
    assert len(rows) > 5 and max(counts) <= 254 and min(counts[:-1]) > 127
    (media_id,) = {r["media_id"] for r in rows}
    vec = document_embedding(store, str(media_id))
    assert vec is not None and vec.shape == (384,) and abs(float((vec**2).sum()) - 1.0) < 1e-5
    segments = store.read("segments", ["segment_index"]).num_rows
    assert segments == len(rows)  # each chunk is a segment


def test_charset_language_and_broken_utf8(tmp_path: Path) -> None:
    data, store_dir = tmp_path / "in", tmp_path / "store"
    data.mkdir()
    (data / "fr.txt").write_bytes(
        "Le café est très chaud et la crème est fraîche ce matin.".encode("latin-1")
    )
    (data / "en.txt").write_text(OWLS, encoding="utf-8-sig")
    (data / "broken.txt").write_bytes("Café au lait".encode() + b" \xff and more text")
    summary = run_pipeline([str(data)], _cfg(), store_dir, show_progress=False)
    assert summary.n_quarantined == 1
    store = Store(store_dir)
    got = {str(r["text"])[:6]: (r["charset"], r["language"]) for r in _texts(store)}
    assert got == {"Le caf": ("cp1252", "fr"), "Owls h": ("utf-8", "en")}
    (q,) = store.read("quarantine").to_pylist()
    assert q["error_code"] == int(ErrorCode.TEXT_ENCODING) and "broken UTF-8" in q["message"]


def test_nltk_backend_end_to_end(tmp_path: Path) -> None:
    from mmfs.transforms.text.nltk_data import search_paths

    if not any((p / "corpora" / "wordnet" / "lexnames").is_file() for p in search_paths()):
        pytest.skip("NLTK WordNet data not built (run `make nltk-data`)")
    data, store_dir = tmp_path / "in", tmp_path / "store"
    data.mkdir()
    (data / "owls.txt").write_text(OWLS, encoding="utf-8")
    run_pipeline([str(data)], PipelineConfig(text=TextConfig(backend="nltk")), store_dir, show_progress=False)
    (row,) = _texts(Store(store_dir))
    assert row["tokens"][:3] == ["Owls", "hunt", "at"] and row["lemmas"][:2] == ["owl", "hunt"]  # type: ignore[index]
    assert row["pos"] is None and row["entities"] is None and row["bow_indices"]


def test_manifest_captions_with_optional_times(tmp_path: Path) -> None:
    import json
    import shutil

    from mmfs.demo import SAMPLE_DIR

    data, store_dir = tmp_path / "in", tmp_path / "store"
    data.mkdir()
    shutil.copy(SAMPLE_DIR / "chelsea_cat.jpg", data / "cat.jpg")
    shutil.copy(SAMPLE_DIR / "coffee.jpg", data / "coffee.jpg")
    shutil.copy(SAMPLE_DIR / "rocket_launch.jpg", data / "rocket.jpg")
    rows = [
        {"uri": "cat.jpg", "caption": "A cat looks up.", "start_s": 0.0, "end_s": 2.5},
        {"uri": "coffee.jpg", "caption": "A cup of coffee."},
        {"uri": "rocket.jpg", "caption": "A rocket lifts off.", "start": 3, "end": 1},
    ]
    manifest = data / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    summary = run_pipeline([str(manifest)], _cfg(), store_dir, show_progress=False)
    assert summary.n_ok == 3 and summary.n_degraded == 1
    store = Store(store_dir)
    got = {r["text"]: (r["source"], r["start_s"], r["end_s"]) for r in _texts(store)}
    assert got == {"A cat looks up.": ("manifest", 0.0, 2.5), "A cup of coffee.": ("manifest", None, None)}
    (q,) = store.read("quarantine").to_pylist()
    assert (q["stage"], q["error_code"]) == ("text", int(ErrorCode.CAPTION_MALFORMED))
    assert "out of order" in q["message"]
