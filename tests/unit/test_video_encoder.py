"""The R3D-18 clip encoder loaded from a checkpoint file the test writes (random weights, real format).

No video model installs offline, so the test builds torchvision's r3d_18 with random weights, saves its
state dict as torchvision's own download would be, and loads it through the encoder's real path
(weights_only, hash prefix in the name checked); the vectors are checked against torchvision run directly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models.video as video_models

from mmfs.encoders import create, names
from mmfs.encoders.video_r3d import CLIP_LEN, uniform_indices
from mmfs.errors import EncoderError, ErrorCode


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A random-weight r3d_18 saved under torchvision's naming (name-<sha256 prefix>.pth)."""
    torch.manual_seed(0)
    model = video_models.r3d_18(weights=None).eval()
    folder = tmp_path_factory.mktemp("weights")
    tmp = folder / "r3d_18.pth"
    torch.save(model.state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = tmp.rename(folder / f"r3d_18-{digest[:8]}.pth")
    return path, model


def clips(n: int, frames: int = 5, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(frames, 72, 96, 3), dtype=np.uint8) for _ in range(n)]


def test_registered_and_selectable_by_name() -> None:
    assert "video.r3d_18" in names()


def test_embeddings_match_torchvision_run_directly(checkpoint: tuple[Path, object]) -> None:
    path, model = checkpoint
    # 2 frames a clip instead of 16 keeps the test quick; the loading and preprocessing path is the same
    encoder = create(
        "video.r3d_18", device="cpu", batch_size=2, options={"weights": str(path), "clip_len": "2"}
    )
    batch = clips(1, frames=2) + clips(1, frames=CLIP_LEN + 4, seed=1)
    vectors = encoder.embed(batch)
    assert vectors.shape == (2, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    transform = video_models.R3D_18_Weights.KINETICS400_V1.transforms()
    model.fc = torch.nn.Identity()  # type: ignore[attr-defined]
    with torch.inference_mode():
        for clip, vec in zip(batch, vectors, strict=True):
            frames = torch.from_numpy(clip[uniform_indices(len(clip), 2)]).permute(0, 3, 1, 2)
            ref = model(transform(frames)[None]).numpy()[0]  # type: ignore[operator]
            np.testing.assert_allclose(vec, ref / np.linalg.norm(ref), atol=1e-4)
    assert encoder.provenance()["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_uniform_indices_spread_and_repeat() -> None:
    assert uniform_indices(32, 16).tolist() == list(range(1, 32, 2))
    assert uniform_indices(2, 4).tolist() == [0, 0, 1, 1]
    assert uniform_indices(1, 16).tolist() == [0] * 16


def test_missing_or_tampered_weights_are_refused(checkpoint: tuple[Path, object], tmp_path: Path) -> None:
    missing = create("video.r3d_18", device="cpu", options={"weights": str(tmp_path / "r3d_18-00000000.pth")})
    with pytest.raises(EncoderError, match=r"no weights at .*KINETICS400_V1") as err:
        missing.load()
    assert err.value.code == ErrorCode.ENCODER_UNAVAILABLE
    renamed = tmp_path / "r3d_18-deadbeef.pth"
    renamed.write_bytes(checkpoint[0].read_bytes())
    with pytest.raises(EncoderError, match="not deadbeef"):
        create("video.r3d_18", device="cpu", options={"weights": str(renamed)}).load()


def test_bad_clip_is_named(checkpoint: tuple[Path, object]) -> None:
    encoder = create("video.r3d_18", device="cpu", options={"weights": str(checkpoint[0])})
    with pytest.raises(EncoderError, match=r"input 1 of 2: expected \(T, H, W, 3\)"):
        encoder.embed([clips(1)[0], np.zeros((8, 8, 3), dtype=np.uint8)])
