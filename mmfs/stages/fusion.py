"""The configured fusion method for `segments.joint`, its provenance, and the projection's file.

`encoders.fusion: concat` needs nothing; `learned` reads the projection that `mmfs train-fusion`
wrote (`encoders.fusion_weights`, a safetensors file: weight, bias, and the widths it was trained
on). The method's name, the widths and the weights' sha256 go into the column's provenance and
into the segments' feature_version, so changing the method recomputes exactly the segments.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.config import PipelineConfig
from mmfs.errors import ConfigError
from mmfs.schemas.tables import MOTION_DIM
from mmfs.transforms.fusion import MODALITIES, Projection, concat_joint, concat_width

DEFAULT_LEARNED_DIM = 256  # `mmfs train-fusion --dim`'s default: segments.joint_learned's width


@dataclass(frozen=True)
class Fusion:
    """How a segment's joint vectors are made: the modality widths and, when learned, the projection."""

    method: str
    widths: Mapping[str, int]
    projection: Projection | None = None
    weights_sha256: str = ""

    def joint(
        self, vectors: Mapping[str, np.ndarray | None]
    ) -> tuple[np.ndarray | None, list[bool], np.ndarray | None]:
        """The segment's concatenation, its modality mask, and (learned) the projected vector."""
        concat, mask = concat_joint(vectors, self.widths)
        if concat is None or self.projection is None:
            return concat, mask, None
        return concat, mask, self.projection.apply(concat)

    def provenance(self) -> dict[str, dict[str, str]]:
        """Per column (joint, joint_learned), what made it: schema metadata and the segments' version."""
        concat = {
            "name": "fusion.concat",
            "modalities": json.dumps(list(MODALITIES)),
            "widths": json.dumps({m: int(self.widths[m]) for m in MODALITIES}),
            "dim": str(concat_width(self.widths)),
            "preprocessing": "present blocks L2-normalised, absent ones zero, scaled by 1/sqrt(present)",
        }
        learned = {"name": "fusion.learned", "state": "not configured (encoders.fusion = concat): null"}
        if self.projection is not None:
            learned = {
                **concat,
                "name": "fusion.learned",
                "dim": str(self.projection.out_dim),
                "weights_sha256": self.weights_sha256,
                "projection": "linear map of the concatenation, then L2-normalised",
            }
        return {"joint": concat, "joint_learned": learned}


def fusion_for(cfg: PipelineConfig, dims: Mapping[str, int]) -> Fusion:
    """The Fusion of a config, given the encoders' widths (image, text, audio)."""
    widths = {"visual": dims["image"], "motion": MOTION_DIM, "audio": dims["audio"], "text": dims["text"]}
    if cfg.encoders.fusion == "concat":
        return Fusion("concat", widths)
    if not cfg.encoders.fusion_weights:
        raise ConfigError("encoders.fusion is 'learned' but encoders.fusion_weights is not set")
    projection, meta, sha = load_projection(cfg.encoders.fusion_weights)
    trained = json.loads(meta.get("widths", "{}"))
    if trained != widths:
        raise ConfigError(
            f"the fusion projection {cfg.encoders.fusion_weights} was trained on widths {trained}, "
            f"but the configured encoders give {widths}; run `mmfs train-fusion` again"
        )
    return Fusion("learned", widths, projection, sha)


@functools.lru_cache(maxsize=4)
def load_projection(path: str) -> tuple[Projection, dict[str, str], str]:
    """(projection, metadata, sha256) of a file written by `save_projection`; cached per path."""
    from safetensors import SafetensorError, safe_open

    file = Path(path)
    try:
        data = file.read_bytes()
        with safe_open(str(file), framework="numpy") as fh:
            meta = dict(fh.metadata() or {})
            weight, bias = fh.get_tensor("weight"), fh.get_tensor("bias")
    except (OSError, SafetensorError) as err:
        raise ConfigError(f"cannot read the fusion projection {path}: {err}") from err
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise ConfigError(f"{path}: weight {weight.shape} and bias {bias.shape} do not make a projection")
    return (
        Projection(weight.astype(np.float32), bias.astype(np.float32)),
        meta,
        hashlib.sha256(data).hexdigest(),
    )


def save_projection(path: Path, projection: Projection, meta: Mapping[str, Any]) -> str:
    """Write the projection as safetensors (no pickle) with JSON-able metadata; returns its sha256."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    text_meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    save_file({"weight": projection.weight, "bias": projection.bias}, str(path), metadata=text_meta)
    load_projection.cache_clear()
    return hashlib.sha256(path.read_bytes()).hexdigest()
