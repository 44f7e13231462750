"""The models that are not embedders share one contract: registered by name with a typed protocol,
described without loading, loaded once and checked against their protocol; the stages name them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmfs.config import config_from_dict
from mmfs.encoders.models import (
    MODELS,
    ModelSpec,
    Recognizer,
    VoiceActivity,
    describe_model,
    load_model,
    register_model,
)
from mmfs.encoders.registry import names as encoder_names
from mmfs.errors import ConfigError


class _Quiet:
    """A VAD that hears nothing: zero probability for every 32 ms chunk."""

    def chunk_probs(self, waves: list[np.ndarray], sample_rate: int) -> list[np.ndarray]:
        return [np.zeros(len(w) // 512, dtype=np.float32) for w in waves]


def quiet_vad() -> _Quiet:
    return _Quiet()


def not_a_model() -> object:
    return object()


def test_every_model_is_described_without_importing_its_module() -> None:
    code = (
        "import sys\nfrom mmfs.encoders.models import MODELS, describe_model\n"
        "found = [describe_model(n) for n in MODELS]\n"
        "loaded = sorted({s.module for s in MODELS.values()} & set(sys.modules))\n"
        "print(len(found), loaded, sorted({'torch', 'onnxruntime'} & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split("\n")[0] == f"{len(MODELS)} [] []"
    info = describe_model("vad.silero")
    assert info["kind"] == "VoiceActivity" and info["package"].startswith("silero-vad==")


def test_a_model_is_checked_against_its_protocol() -> None:
    register_model("vad.test_quiet", ModelSpec(VoiceActivity, __name__, "quiet_vad", "numpy"))
    vad = load_model("vad.test_quiet", VoiceActivity)
    assert [len(p) for p in vad.chunk_probs([np.zeros(1024, np.float32)], 16_000)] == [2]
    with pytest.raises(ConfigError, match="is a VoiceActivity, not a Recognizer"):
        load_model("vad.test_quiet", Recognizer)
    register_model("asr.test_broken", ModelSpec(Recognizer, __name__, "not_a_model", "numpy"))
    with pytest.raises(TypeError, match="does not implement Recognizer"):
        load_model("asr.test_broken", Recognizer)
    with pytest.raises(ConfigError, match=r"unknown model 'asr\.nothing'"):
        load_model("asr.nothing", Recognizer)


def test_the_stages_name_only_registered_models() -> None:
    from mmfs.stages.encode import Enricher

    cfg = config_from_dict(
        {"image": {"ocr": True, "faces": True, "nsfw": True}, "audio": {"pitch": True, "asr": "pocketsphinx"}}
    )
    named = {m for s in Enricher(cfg).stages for m in s.resources.models}
    assert {"faces.mtcnn", "nsfw.nudenet", "ocr.rapidocr", "vad.silero", "pitch.torchcrepe"} <= named
    assert named <= set(MODELS) | set(encoder_names()) | {"spacy"}


def test_no_stage_probes_a_model_with_hasattr() -> None:
    stages = Path(__file__).resolve().parents[2] / "mmfs" / "stages"
    assert [p.name for p in stages.glob("*.py") if "hasattr(" in p.read_text()] == []
