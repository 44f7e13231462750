"""MiniLM's two engines against sentence-transformers and each other: the lean torch forward
(encoders/bert_lean.py, used on CUDA) and the packed NumPy one (encoders/bert_numpy.py, the CPU engine
of `text.minilm` and of search queries); and `mmfs search`'s start-up: a text search in a fresh
process embeds the query in NumPy and imports none of the heavy libraries (torch, sentence-transformers,
transformers, decoders, spaCy, other models)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmfs.config import PipelineConfig
from mmfs.schemas.rows import rows_to_table
from mmfs.stages.model_meta import run_schemas
from mmfs.stages.versions import feature_versions
from mmfs.store.db import Store

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "a cup of coffee",
    "Owls hunt at night. They fly without a sound and see well in the dark.",
    "x",
    "",
    "Ünïcödé café, naïve résumé; " * 60,  # past the 256 word pieces: truncated alike
]


def test_lean_minilm_matches_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers is the reference")
    from mmfs.encoders import get_cached

    encoder = get_cached("text.minilm", device="cpu")
    assert not encoder.uses_torch  # the CPU engine is NumPy
    reference = st.SentenceTransformer(str(encoder.model_dir()), device="cpu", local_files_only=True)
    want = reference.encode(TEXTS, batch_size=len(TEXTS), convert_to_numpy=True, normalize_embeddings=True)
    np.testing.assert_allclose(encoder.embed(TEXTS), want, atol=2e-5)
    np.testing.assert_allclose(_torch_engine().encode(TEXTS), want, atol=2e-5)


def _torch_engine() -> Any:
    """The lean torch BERT over the same package folder (what `text.minilm` runs on CUDA), on the CPU."""
    from mmfs.encoders.bert_lean import SentenceEncoder
    from mmfs.encoders.text_minilm import MiniLMTextEncoder, _model_dir

    return SentenceEncoder(_model_dir("text.minilm"), MiniLMTextEncoder.max_seq_length, device="cpu")


PROBE = """
import json, sys
from mmfs.cli import main
sys.argv = ["mmfs", "search", "--text", "a cup of coffee", "--store", sys.argv[1], "--json", "-k", "1"]
try:
    main()
except SystemExit as done:
    code = done.code
from mmfs.encoders import registry
heavy = ("torch", "sentence_transformers", "transformers", "cv2", "decord", "librosa", "spacy", "av", "ray",
         "apache_beam", "sklearn", "torchvision", "torchaudio", "efficientnet_lite_pytorch", "resemblyzer")
print(json.dumps({"code": code, "loaded": sorted(k[0] for k in registry._CACHE),
                  "heavy": sorted(m for m in heavy if m in sys.modules)}), file=sys.stderr)
"""


def test_the_numpy_engine_matches_the_torch_one_packed_or_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same weights, same tokenizer, same vectors (to float32 rounding), however the texts are packed."""
    from mmfs.encoders import bert_numpy, get_cached
    from mmfs.encoders.text_minilm import embed_query

    texts = TEXTS + [f"note {i}: " + "owls and coffee " * (i % 40) for i in range(60)]
    want = _torch_engine().encode(texts)
    np.testing.assert_allclose(get_cached("text.minilm", device="cpu").embed(texts), want, atol=1e-6)
    np.testing.assert_allclose(np.stack([embed_query(t) for t in TEXTS]), want[: len(TEXTS)], atol=1e-6)
    monkeypatch.setattr(bert_numpy, "PACKED_TOKENS", 64)  # many small packs, a long text alone in one
    model = bert_numpy.NumpySentenceEncoder(get_cached("text.minilm").model_dir(), 256)
    np.testing.assert_allclose(model.encode(texts), want, atol=1e-6)


def test_text_search_in_a_fresh_process_imports_no_torch(tmp_path: Path) -> None:
    cfg = PipelineConfig()
    store = Store(tmp_path / "store")
    schemas = run_schemas(cfg, feature_versions(cfg))
    store.ensure_tables(schemas)
    vector = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    segment = {"media_id": "m1", "segment_index": 0, "start_s": 0.0, "end_s": 1.0, "kind": "text"}
    row = {**segment, "fused": vector.tolist(), "text": vector.tolist(), "modalities": ["text"]}
    store.write(
        "segments", rows_to_table([{**row, "feature_version": "v", "run_id": "r"}], schemas["segments"])
    )
    media = {
        "media_id": "m1",
        "uri": "/data/note.txt",
        "uris": ["/data/note.txt"],
        "kind": "text",
        "status": "ok",
    }
    store.write("media", rows_to_table([{**media, "feature_version": "v", "run_id": "r"}], schemas["media"]))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PATH": "/usr/bin:/bin",
        },
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    assert json.loads(done.stdout)["hits"][0]["media_id"] == "m1"
    assert report["loaded"] == []  # the query is embedded in NumPy: no torch encoder is made
    assert report["heavy"] == []
