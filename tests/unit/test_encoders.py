"""Encoders with their real pretrained weights, loaded offline; the embed contract; the registry's rules."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

import mmfs
from mmfs.demo import SAMPLE_DIR
from mmfs.encoders import create, get_cached, names, register, registry
from mmfs.encoders.base import Encoder
from mmfs.encoders.devices import resolve_device
from mmfs.errors import ConfigError, EncoderError, ErrorCode
from tests import media_factory as mf

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) supplies the test photos")

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CARDS = Path("/usr/share/pocketsphinx/test/data/cards")  # another speaker, same Debian package
CAT_CLASSES = {"tabby", "tiger cat", "Egyptian cat"}


def _unit_rows(v: np.ndarray) -> bool:
    return v.dtype == np.float32 and bool(np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5))


def _top(labels: list[tuple[str, float]]) -> set[str]:
    return {name for name, _ in labels}


# -- text ------------------------------------------------------------------------------------------


def test_minilm_ranks_a_paraphrase_closer_and_is_deterministic() -> None:
    enc = get_cached("text.minilm")
    v = enc.embed(["a cat sitting on a sofa", "a kitten resting on a couch", "stock market prices fell", ""])
    assert enc.dim == 384 and v.shape == (4, 384) and _unit_rows(v)
    assert v[0] @ v[1] > 0.6 > 0.2 > v[0] @ v[2]
    assert np.allclose(enc.embed(["a cat sitting on a sofa"])[0], v[0], atol=1e-6)


def test_minilm_refuses_what_is_not_a_string() -> None:
    with pytest.raises(EncoderError, match="input 1 of 2: expected str, got NoneType") as info:
        get_cached("text.minilm").embed(["fine", None])
    assert info.value.code == ErrorCode.ENCODER_FAILED


# -- image -----------------------------------------------------------------------------------------


def test_efficientnet_labels_real_photos_in_one_pass() -> None:
    enc = get_cached("image.efficientnet_lite0")
    cat, coffee = skimage_data.chelsea(), skimage_data.coffee()
    vectors, labels = enc.embed_and_classify([cat, coffee, cat[:, ::-1]], top_k=5)
    assert enc.dim == 1280 and vectors.shape == (3, 1280) and _unit_rows(vectors)
    assert CAT_CLASSES & _top(labels[0]) and CAT_CLASSES & _top(labels[2])
    assert {"espresso", "cup", "coffee mug"} & _top(labels[1])
    assert vectors[0] @ vectors[2] > 0.9 > 0.3 > vectors[0] @ vectors[1]
    probs = [p for _, p in labels[1]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    assert np.allclose(enc.embed([cat])[0], vectors[0], atol=1e-5)
    assert enc.classify([coffee], top_k=1)[0][0][0] == "espresso"


def _torch_engine(name: str = "image.efficientnet_lite0") -> Any:
    """The encoder with its torch CPU engine (the default CPU engine is NumPy: test_efficientnet_numpy)."""
    from mmfs.encoders.registry import create

    enc: Any = create(name, device="cpu")
    enc.cpu_engine = "torch"
    enc.load()
    return enc


def test_efficientnet_features_and_logits_match_the_models_own_forward() -> None:
    enc: Any = _torch_engine()
    cat = skimage_data.chelsea()
    with torch.inference_mode():
        logits = enc.model(enc._tensor([cat]))
        assert torch.allclose(enc._forward([cat])[1], logits, atol=1e-5)
        # the channels-last fast path computes what the plain NCHW layout computes
        assert enc._tensor([cat]).is_contiguous(memory_format=torch.channels_last)
        plain = copy.deepcopy(enc.model).to(memory_format=torch.contiguous_format)
        assert torch.allclose(plain(enc._tensor([cat]).contiguous()), logits, atol=1e-4)


def test_efficientnet_rewritten_for_the_cpu_computes_what_the_packages_model_computes() -> None:
    from efficientnet_lite_pytorch import EfficientNet

    from mmfs.encoders.efficientnet_infer import Pointwise, rewrite_for_cpu
    from mmfs.encoders.weights import load_state_dict

    enc: Any = _torch_engine()
    package = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    package.load_state_dict(load_state_dict(enc.weight_files()[0], owner="test"))
    package.eval()
    # what the rewrite is for: no BatchNorm, no 1x1 conv left, pads only where they are one-sided
    modules = list(enc.model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in modules)
    assert sum(isinstance(m, Pointwise) for m in modules) == 32  # 15 expand, 16 project, the head
    assert not any(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) for m in modules)
    pads = [m.padding for m in modules if isinstance(m, torch.nn.ZeroPad2d)]
    assert pads and all(p[0] != p[1] for p in pads)
    photos = [skimage_data.chelsea(), skimage_data.coffee(), skimage_data.rocket()]
    with torch.inference_mode():
        x = enc._tensor(photos)
        want = package._avg_pooling(package.extract_features(x.contiguous())).flatten(1)
        pooled, logits = enc._forward_input(x)
        assert torch.allclose(pooled, want, atol=1e-4)
        assert torch.allclose(logits, package._fc(want), atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        rewrite_for_cpu(package.train())


def test_efficientnet_reads_a_png_from_disk(tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "chelsea.png"  # scikit-image's cat photo, written and decoded as a real PNG file
    Image.fromarray(skimage_data.chelsea()).save(png)
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert CAT_CLASSES & _top(get_cached("image.efficientnet_lite0").classify([pixels], top_k=5)[0])


def test_efficientnet_takes_any_size_grey_and_rgba_and_chunks_consistently() -> None:
    enc = get_cached("image.efficientnet_lite0")
    cat = skimage_data.chelsea()
    odd = [
        np.zeros((5, 7, 3), np.uint8),
        np.full((10, 2000, 3), 200, np.uint8),  # extreme aspect ratio: cropped before resizing
        skimage_data.camera(),  # grey HxW
        np.dstack([cat, np.full(cat.shape[:2], 255, np.uint8)]),  # RGBA
        cat[:1, :1],
    ]
    assert _unit_rows(enc.embed(odd))
    small = create("image.efficientnet_lite0", device="cpu", batch_size=2)
    batch = [cat, skimage_data.coffee(), skimage_data.astronaut()]
    assert np.allclose(small.embed(batch), enc.embed(batch), atol=1e-5)
    with pytest.raises(EncoderError, match=r"input 1 of 2: expected a uint8"):
        enc.embed([cat, cat.astype(np.float32)])
    with pytest.raises(EncoderError, match=r"top_k"):
        enc.classify([cat], top_k=0)


# -- audio -----------------------------------------------------------------------------------------


def _speech() -> np.ndarray:
    samples, rate = sf.read(SAMPLE_DIR / "dashwood_speech.wav", dtype="float32")
    assert rate == 16000
    return samples


def test_resemblyzer_tells_speech_from_a_tone_and_pads_short_windows() -> None:
    enc = get_cached("audio.resemblyzer")
    speech = _speech()
    tone = mf.sine(440, 1.0, 16000).astype(np.float32)
    v = enc.embed([speech[16000:32000], speech[48000:64000], tone, speech[16000:20800]])  # last: 0.3 s
    assert enc.dim == 256 and v.shape == (4, 256) and _unit_rows(v)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1
    quiet = enc.embed([speech[16000:32000] * 0.05])[0]  # volume is raised before the mel
    assert quiet @ v[0] > 0.85
    with pytest.raises(EncoderError, match=r"input 0 of 1: expected a non-empty 1-D"):
        enc.embed([np.zeros((2, 16000), np.float32)])


def test_resemblyzer_same_speaker_closer_than_another_speaker() -> None:
    same = sorted(LIBRIVOX.glob("*.wav"))
    other = sorted(CARDS.glob("*.wav"))
    if len(same) < 2 or not other:
        pytest.skip("LibriVox / cards speech is absent (Debian pocketsphinx-testdata)")
    enc = get_cached("audio.resemblyzer")
    a = enc.embed([sf.read(p, dtype="float32")[0][:48000] for p in same])
    b = enc.embed([sf.read(p, dtype="float32")[0] for p in other])
    within = (a @ a.T - np.eye(len(a))).sum(axis=1) / (len(a) - 1)
    across = (a @ b.T).mean(axis=1)
    assert (within > across + 0.05).all(), (within, across)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # resemblyzer imports a deprecated scipy path
def test_resemblyzer_matches_the_reference_library() -> None:
    from resemblyzer import VoiceEncoder  # its loader relies on torch's weights_only default

    speech = _speech()[:48000]  # loud enough that volume normalisation is a no-op
    ours = get_cached("audio.resemblyzer").embed([speech, speech[:16000]])
    reference = VoiceEncoder("cpu", verbose=False)
    assert np.allclose(ours[0], reference.embed_utterance(speech), atol=1e-5)
    assert np.allclose(ours[1], reference.embed_utterance(speech[:16000]), atol=1e-5)


def test_resemblyzer_numpy_engine_equals_the_torch_engine() -> None:
    from mmfs.encoders.registry import create

    numpy_engine: Any = create("audio.resemblyzer", device="cpu")
    torch_engine: Any = type(
        "TorchEngine", (type(numpy_engine),), {"uses_torch": property(lambda self: True)}
    )(device="cpu")
    speech = _speech()
    windows = [
        speech[:32000],
        speech[8000:12000],
        speech[16000:64000] * 0.01,
        np.zeros(16000, np.float32) + 0.1,
    ]
    ours, theirs = numpy_engine.embed(windows), torch_engine.embed(windows)
    assert not numpy_engine.uses_torch and torch_engine.uses_torch
    assert np.abs(ours - theirs).max() < 1e-5


# -- the contract, with a fake model ---------------------------------------------------------------


class _Fake(Encoder):
    modality, dim = "text", 2

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[int] = []

    def weight_files(self) -> list[Path]:
        return []

    def _load(self) -> None: ...

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        self.calls.append(len(batch))
        table = {"bad": [float("nan"), 1.0], "zero": [0.0, 0.0]}
        return np.array([table.get(t, [3.0, 4.0]) for t in batch], dtype=np.float64)


def test_embed_chunks_normalises_and_refuses_nonfinite_rows() -> None:
    fake = _Fake(device="cpu", batch_size=2)
    v = fake.embed(["a", "b", "c", "d", "e"])
    assert fake.calls == [2, 2, 1] and v.dtype == np.float32 and np.allclose(v, [[0.6, 0.8]] * 5)
    assert fake.embed([]).shape == (0, 2)
    for word, what in (("bad", "non-finite"), ("zero", "zero-norm")):
        with pytest.raises(EncoderError, match=f"{what} embedding for input 2 of 3") as info:
            fake.embed(["a", "b", word])
        assert info.value.code == ErrorCode.NONFINITE_EMBEDDING
    with pytest.raises(ConfigError):
        _Fake(device="cpu", batch_size=0)


class _Marker:
    """Pickled, it calls Path.touch on load: the anemoi-core#1416 proof of concept, harmless."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_weights_are_pinned_and_loaded_without_pickle_code(tmp_path: Path) -> None:
    marker, evil = tmp_path / "pwned", tmp_path / "pretrained.pt"
    torch.save({"model_state": _Marker(marker)}, evil)
    base = type(create("audio.resemblyzer", device="cpu"))
    pinned = type("Pinned", (base,), {"weight_files": lambda self: [evil]})
    with pytest.raises(EncoderError, match="pinned") as info:
        pinned(device="cpu").load()
    assert info.value.code == ErrorCode.ENCODER_UNAVAILABLE
    unpinned = type("Unpinned", (pinned,), {"pinned_sha256": None})
    with pytest.raises(EncoderError, match="cannot load weights") as info:
        unpinned(device="cpu").load()  # weights_only=True refuses the pickled call
    assert info.value.code == ErrorCode.ENCODER_UNAVAILABLE and not marker.exists()


# -- registry, provenance, devices -----------------------------------------------------------------


def test_registry_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    assert {"text.minilm", "image.efficientnet_lite0", "audio.resemblyzer"} <= set(names())
    with pytest.raises(ConfigError, match=r"unknown encoder 'text\.nope'.*text\.minilm"):
        create("text.nope")
    register("test.fake")(_Fake)
    register("test.fake")(_Fake)  # the same class again (a re-import) is harmless
    with pytest.raises(ValueError, match="already registered"):
        register("test.fake")(type("Other", (_Fake,), {}))
    assert "test.fake" in names() and isinstance(create("test.fake", device="cpu"), _Fake)
    assert get_cached("text.minilm", "auto") is get_cached("text.minilm", resolve_device("auto"))


@pytest.mark.parametrize("name", ["text.minilm", "image.efficientnet_lite0", "audio.resemblyzer"])
def test_provenance(name: str) -> None:
    enc = get_cached(name)
    prov = enc.provenance()
    assert prov["name"] == name and prov["model"] and prov["dim"] == str(enc.dim)
    assert (
        re.fullmatch(r"[0-9a-f]{64}", prov["weights_sha256"]) and prov["weights_sha256"] == enc.pinned_sha256
    )
    assert re.fullmatch(r"[a-z0-9-]+==\S+", prov["package"])
    assert isinstance(json.loads(prov["preprocessing"]), dict) and prov["code_version"] == mmfs.__version__
    assert enc.resources().device == enc.device and enc.resources().approx_memory_mb > 0


def test_import_and_names_do_not_import_torch() -> None:
    code = "import sys, mmfs.encoders as e; e.names(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="unknown encoder device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


def test_auto_is_the_cpu_without_importing_torch_where_no_gpu_driver_is_present() -> None:
    from mmfs.encoders.devices import gpu_driver_present

    code = (
        "import sys\nfrom mmfs.encoders.devices import gpu_driver_present, resolve_device\n"
        "print(resolve_device('auto'), gpu_driver_present(), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    device, driver, imported = out.stdout.split()
    assert driver == str(gpu_driver_present())
    # no driver: the CPU, torch never imported; a driver: torch decides (and is imported)
    assert (device, imported) == (("cpu", "False") if driver == "False" else (resolve_device("auto"), "True"))
