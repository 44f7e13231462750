"""Fusion of a segment's modality vectors: the normalised concatenation, its mask, a saved projection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmfs.config import config_from_dict
from mmfs.errors import ConfigError
from mmfs.stages.fusion import fusion_for, load_projection, save_projection
from mmfs.transforms.fusion import MODALITIES, Projection, concat_joint, concat_width

WIDTHS = {"visual": 4, "motion": 16, "audio": 3, "text": 5}
DIMS = {"image": 4, "audio": 3, "text": 5}


def test_concat_is_unit_length_with_a_mask_and_dot_is_the_mean_shared_similarity() -> None:
    rng = np.random.default_rng(0)
    a = {m: rng.normal(size=w).astype(np.float32) for m, w in WIDTHS.items()}
    b = {**{m: rng.normal(size=w).astype(np.float32) for m, w in WIDTHS.items()}, "audio": None}
    ja, mask_a = concat_joint(a, WIDTHS)
    jb, mask_b = concat_joint(b, WIDTHS)
    assert ja is not None and jb is not None and ja.shape == (concat_width(WIDTHS),) == (28,)
    assert mask_a == [True] * 4 and mask_b == [True, True, False, True]
    assert np.isclose(np.linalg.norm(ja), 1.0) and np.isclose(np.linalg.norm(jb), 1.0)
    cos = {
        m: float(np.dot(a[m], b[m]) / np.linalg.norm(a[m]) / np.linalg.norm(b[m]))
        for m in MODALITIES
        if b[m] is not None
    }
    assert np.isclose(np.dot(ja, jb), sum(cos.values()) / np.sqrt(4 * 3), atol=1e-6)
    zero = {**a, "text": np.zeros(5, np.float32), "visual": np.full(4, np.nan, np.float32)}
    assert concat_joint(zero, WIDTHS)[1] == [False, True, True, False]  # unusable vectors count as absent
    assert concat_joint(dict.fromkeys(MODALITIES), WIDTHS) == (None, [False] * 4)
    with pytest.raises(ValueError, match="visual vector has shape"):
        concat_joint({**a, "visual": np.ones(3, np.float32)}, WIDTHS)


def test_learned_projection_round_trips_and_is_checked_against_the_encoders(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    proj = Projection(rng.normal(size=(6, 28)).astype(np.float32), rng.normal(size=6).astype(np.float32))
    path = tmp_path / "p.safetensors"
    sha = save_projection(path, proj, {"widths": WIDTHS, "steps": 3})
    loaded, meta, sha2 = load_projection(str(path))
    assert sha == sha2 and np.array_equal(loaded.weight, proj.weight) and meta["steps"] == "3"
    cfg = config_from_dict({"encoders": {"fusion": "learned", "fusion_weights": str(path)}})
    fusion = fusion_for(cfg, DIMS)
    x = {m: rng.normal(size=w).astype(np.float32) for m, w in WIDTHS.items()}
    concat, mask, learned = fusion.joint(x)
    assert concat is not None and learned is not None and mask == [True] * 4
    ref = proj.weight @ concat + proj.bias
    assert np.allclose(learned, ref / np.linalg.norm(ref), atol=1e-6)
    assert fusion.provenance()["joint_learned"]["weights_sha256"] == sha
    with pytest.raises(ConfigError, match="trained on widths"):
        fusion_for(cfg, {**DIMS, "text": 6})
    with pytest.raises(ConfigError, match="fusion_weights is not set"):
        fusion_for(config_from_dict({"encoders": {"fusion": "learned"}}), DIMS)
    with pytest.raises(ConfigError, match="cannot read the fusion projection"):
        fusion_for(config_from_dict({"encoders": {"fusion": "learned", "fusion_weights": "/nope"}}), DIMS)
