"""The driver lays out schemas from the models' metadata: widths and provenance without loading weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mmfs.config import PipelineConfig
from mmfs.encoders.registry import create, describe
from mmfs.stages.model_meta import ModelMeta
from tests.tiny_clip import build_tiny_clip

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

PROBE = """
import json, sys
from mmfs.config import PipelineConfig
from mmfs.encoders.registry import loaded_count
from mmfs.stages.model_meta import run_schemas
from mmfs.stages.versions import feature_versions
cfg = PipelineConfig()
schemas = run_schemas(cfg, feature_versions(cfg))
frames = schemas["frames"].field("embedding")
provenance = json.loads(schemas["frames"].metadata[b"mmfs.provenance.embedding"])
print(json.dumps({
    "loaded": loaded_count(),
    "frames_width": frames.type.list_size,
    "text_width": schemas["text"].field("embedding").type.list_size,
    "provenance": provenance["name"],
}))
"""


def test_run_schemas_load_no_model() -> None:
    """In a fresh process, the full set of schemas (with provenance) leaves no model loaded."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=ENV, timeout=300, check=True
    )
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc == {
        "loaded": 0,
        "frames_width": 1280,
        "text_width": 384,
        "provenance": "image.efficientnet_lite0",
    }


def test_described_widths_are_the_loaded_ones(tmp_path: Path) -> None:
    """A checkpoint-dependent width (CLIP) is read from its config, and matches the loaded model."""
    clip_dir = build_tiny_clip(tmp_path / "clip", projection_dim=24)
    options = {"model": str(clip_dir)}
    described = describe("image.clip", options)
    assert described.dim == 24 and not described._loaded
    loaded = create("image.clip", options=options)
    loaded.load()
    assert loaded.dim == described.dim
    cfg = PipelineConfig.model_validate(
        {"encoders": {"image": "image.clip", "text": "text.clip", "clip_model_dir": str(clip_dir)}}
    )
    meta = ModelMeta(cfg)
    assert meta.dims()["image"] == meta.dims()["text"] == 24 and meta.shared_space()
    assert meta.provenance()["frames"]["embedding"]["weights_sha256"] == loaded.weights_sha256()
