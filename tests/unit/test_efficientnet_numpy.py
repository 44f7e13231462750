"""EfficientNet-Lite in NumPy (the CPU engine) computes what the torch engine computes, without torch;
torch checkpoints are read without torch, and refused when they hold more than tensors."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # a declared dependency: the torch engine is the reference
from skimage import data as skimage_data

from mmfs.encoders.registry import create
from mmfs.encoders.torch_checkpoint import CheckpointError, load_checkpoint
from mmfs.errors import EncoderError

ROOT = Path(__file__).resolve().parents[2]


def _engines(name: str) -> tuple[Any, Any]:
    numpy_engine: Any = create(name, device="cpu")
    torch_engine: Any = create(name, device="cpu")
    torch_engine.cpu_engine = "torch"
    numpy_engine.load()
    torch_engine.load()
    return numpy_engine, torch_engine


@pytest.mark.parametrize("name", ["image.efficientnet_lite0", "image.efficientnet_lite2"])
def test_the_numpy_engine_gives_the_torch_engines_vectors_and_labels(name: str) -> None:
    fast, reference = _engines(name)
    assert not fast.uses_torch and reference.uses_torch
    rng = np.random.default_rng(0)
    photos = [
        skimage_data.chelsea(),
        skimage_data.coffee(),
        skimage_data.rocket(),
        skimage_data.camera(),  # grey
        rng.integers(0, 256, (37, 301, 4), dtype=np.uint8),  # RGBA, odd size, extreme aspect
        np.zeros((3, 5, 3), np.uint8),  # smaller than the input: upsampled
    ]
    vectors, labels, probs = fast.embed_classify_probabilities(photos, top_k=3)
    want_vectors, want_labels, want_probs = reference.embed_classify_probabilities(photos, top_k=3)
    assert np.abs(vectors - want_vectors).max() < 1e-5
    assert np.abs(probs - want_probs).max() < 1e-5
    assert [[label for label, _ in row] for row in labels[:4]] == [
        [label for label, _ in row] for row in want_labels[:4]
    ]
    # the same input through both networks: the preprocessing is compared separately from the forward
    x = reference._tensor(photos[:3])
    with torch.inference_mode():
        pooled, logits = reference._forward_input(x)
    ours = fast.model.forward(x.permute(0, 2, 3, 1).contiguous().numpy())
    assert np.abs(ours[0] - pooled.numpy()).max() < 1e-4 and np.abs(ours[1] - logits.numpy()).max() < 1e-4
    prepared = fast._prepare(photos[:3])
    assert prepared.shape == (3, fast.input_size, fast.input_size, 3)
    assert np.abs(prepared - x.permute(0, 2, 3, 1).numpy()).max() < 1e-4


def test_chunks_and_lanes_give_the_same_vectors() -> None:
    enc: Any = create("image.efficientnet_lite0", device="cpu", batch_size=2)
    photos = [skimage_data.chelsea(), skimage_data.coffee(), skimage_data.rocket(), skimage_data.astronaut()]
    one_by_one = np.concatenate([enc.embed([p]) for p in photos])
    assert np.abs(enc.embed(photos) - one_by_one).max() < 1e-5


def test_forwards_in_two_threads_at_once_give_what_each_gives_alone() -> None:
    """Lanes run the forward in two threads: each keeps its own scratch buffer and gets its own result."""
    enc: Any = create("image.efficientnet_lite0", device="cpu")
    enc.load()
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((n, 224, 224, 3)).astype(np.float32) for n in (3, 9)]
    alone = [enc.model.forward(x) for x in inputs]
    together: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    start = threading.Barrier(2)

    def run(index: int) -> None:
        start.wait()
        together[index] = [enc.model.forward(inputs[index]) for _ in range(3)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, (pooled, logits) in enumerate(alone):
        for got_pooled, got_logits in together[index]:
            assert np.abs(got_pooled - pooled).max() < 1e-5 and np.abs(got_logits - logits).max() < 1e-5


def test_torch_checkpoints_of_both_formats_read_as_torch_reads_them(tmp_path: Path) -> None:
    zipped = tmp_path / "new.pt"
    state = {
        "w": torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),  # a strided view
        "half": torch.tensor([1.5, -2.0], dtype=torch.float16),
        "bf16": torch.tensor([0.25, 3.0], dtype=torch.bfloat16),
        "long": torch.tensor(7),
        "nested": {"list": [torch.ones(2, 2)], "n": 3, "s": "text"},
    }
    torch.save(state, zipped)
    got = load_checkpoint(zipped)
    assert np.array_equal(got["w"], state["w"].numpy()) and got["w"].flags.c_contiguous
    assert got["half"].dtype == np.float16 and got["half"].tolist() == [1.5, -2.0]
    assert got["bf16"].dtype == np.float32 and got["bf16"].tolist() == [0.25, 3.0]
    assert got["long"].shape == () and int(got["long"]) == 7
    assert (
        got["nested"]["n"] == 3 and got["nested"]["s"] == "text" and got["nested"]["list"][0].shape == (2, 2)
    )
    legacy = tmp_path / "old.pt"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    old = load_checkpoint(legacy)
    assert all(np.array_equal(old[k], got[k]) for k in ("w", "half", "bf16", "long"))
    # the packages' own files (legacy format): every tensor equal to torch.load's
    path = create("image.efficientnet_lite0").weight_files()[0]
    ours, theirs = load_checkpoint(path), torch.load(path, map_location="cpu", weights_only=True)
    assert set(ours) == set(theirs)
    assert all(np.array_equal(ours[k], theirs[k].numpy()) for k in theirs)


class _Boom:
    def __reduce__(self) -> tuple[Any, ...]:
        return (eval, ("1 + 1",))


def test_a_checkpoint_that_holds_code_or_is_cut_short_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2), "x": _Boom()}, evil)
    with pytest.raises(CheckpointError, match=r"refusing to unpickle \S+\.eval"):
        load_checkpoint(evil)
    legacy_evil = tmp_path / "evil_legacy.pt"
    with legacy_evil.open("wb") as fh:
        pickle.dump(_Boom(), fh)
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(legacy_evil)
    cut = tmp_path / "cut.pt"
    whole = tmp_path / "whole.pt"
    torch.save({"w": torch.ones(1000)}, whole, _use_new_zipfile_serialization=False)
    cut.write_bytes(whole.read_bytes()[:-100])
    with pytest.raises(CheckpointError):
        load_checkpoint(cut)
    # through the encoder: one readable EncoderError naming the file
    enc: Any = create("image.efficientnet_lite0", device="cpu")
    enc.weight_files = lambda: [evil]
    enc.pinned_sha256 = None
    with pytest.raises(EncoderError, match=r"cannot load weights from .*evil\.pt"):
        enc.load()


def test_the_numpy_engine_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from skimage import data\n"
        "from mmfs.encoders.registry import create\n"
        "enc = create('image.efficientnet_lite0', device='cpu')\n"
        "v, labels = enc.embed_and_classify([data.chelsea()], top_k=3)\n"
        "assert v.shape == (1, 1280) and 'cat' in ' '.join(l for l, _ in labels[0])\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_a_tensor_whose_offset_or_strides_leave_its_storage_is_refused() -> None:
    from mmfs.encoders import torch_checkpoint as tc

    storage = tc._Storage("0", tc._StorageType("FloatStorage"), 6)
    arrays = {"0": np.arange(6, dtype=np.float32)}
    assert tc._resolve(tc._PendingTensor(storage, 0, (2, 3), (3, 1)), arrays).tolist() == [
        [0, 1, 2],
        [3, 4, 5],
    ]
    for offset, size, stride in [(-1, (2,), (1,)), (0, (2, 3), (4, 1)), (5, (2,), (1,)), (0, (3,), (-1,))]:
        with pytest.raises(CheckpointError):
            tc._resolve(tc._PendingTensor(storage, offset, size, stride), arrays)
    with pytest.raises(CheckpointError):
        tc._resolve(tc._PendingTensor(storage, 6, (), ()), arrays)
