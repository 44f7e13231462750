"""Encoders with their real pretrained weights, loaded offline; the registry's rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mmfs.demo import SAMPLE_DIR
from mmfs.encoders import create, get_cached, names, register
from mmfs.encoders.base import Encoder
from mmfs.errors import ConfigError, EncoderError, ErrorCode
from tests import media_factory as mf

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) supplies the test photos")


def test_minilm_ranks_paraphrases_closer() -> None:
    enc = get_cached("text.minilm")
    a, b, c = enc.embed(
        ["a cat sitting on a sofa", "a kitten resting on a couch", "stock market prices fell"]
    )
    assert enc.dim == 384 and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert a @ b > 0.6 > 0.2 > a @ c
    assert np.allclose(enc.embed(["a cat sitting on a sofa"])[0], a, atol=1e-6)


def test_efficientnet_labels_real_photos() -> None:
    enc = get_cached("image.efficientnet_lite0")
    cat, coffee = skimage_data.chelsea(), skimage_data.coffee()
    vectors, labels = enc.embed_and_classify([cat, coffee, cat[:, ::-1]], top_k=5)
    assert vectors.shape == (3, 1280) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert {"tabby", "tiger cat", "Egyptian cat"} & {name for name, _ in labels[0]}
    assert {"espresso", "cup", "coffee mug"} & {name for name, _ in labels[1]}
    assert vectors[0] @ vectors[2] > vectors[0] @ vectors[1]
    assert np.allclose(enc.embed([cat])[0], vectors[0], atol=1e-5)


def test_resemblyzer_tells_speech_from_a_tone() -> None:
    enc = get_cached("audio.resemblyzer")
    speech, rate = sf.read(SAMPLE_DIR / "dashwood_speech.wav", dtype="float32")
    assert rate == 16000
    tone = mf.sine(440, 1.0, 16000)
    v = enc.embed([speech[:16000], speech[16000:32000], tone, speech[:3000]])
    assert v.shape == (4, 256)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_registry_rules() -> None:
    assert {"text.minilm", "image.efficientnet_lite0", "audio.resemblyzer"} <= set(names())
    with pytest.raises(ConfigError, match=r"text\.minilm"):
        create("text.nope")

    class Dummy(Encoder):
        modality, dim = "text", 2

        def _load(self) -> None: ...

        def weight_files(self) -> list[Path]:
            return []

        def _embed_batch(self, batch: list[str]) -> np.ndarray:
            return np.array([[float("nan"), 1.0] if t == "bad" else [1.0, 1.0] for t in batch])

    register("test.dummy")(Dummy)
    with pytest.raises(ValueError, match="already registered"):
        register("test.dummy")(type("Other", (Dummy,), {}))
    dummy = create("test.dummy", device="cpu")
    assert np.allclose(dummy.embed(["ok"]), [[2**-0.5, 2**-0.5]])
    with pytest.raises(EncoderError) as info:
        dummy.embed(["ok", "bad"])
    assert info.value.code == ErrorCode.NONFINITE_EMBEDDING
    assert dummy.embed([]).shape == (0, 2)


def test_provenance_and_lazy_import() -> None:
    prov = get_cached("image.efficientnet_lite0").provenance()
    assert len(prov["weights_sha256"]) == 64 and prov["name"] == "image.efficientnet_lite0"
    code = "import sys, mmfs.encoders; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
