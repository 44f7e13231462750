"""One contract for the models that are not embedders: VAD, ASR, OCR, faces, NSFW and pitch.

Each is registered by name with the typed protocol of what it does (`FaceDetector`, `TextReader`,
...), the module and loader that build it, and the package that ships its weights; `describe_model`
reads that without loading anything, `load_model` builds it once per process and checks that it
implements its protocol (no `hasattr` probing at the call sites). The stages name these models in
their `resources`, so a runner knows which process holds what. Their calls are keyed
(`encoders/keyed.run_keyed`): each result comes back under its input's key.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from mmfs.errors import ConfigError

Box = tuple[float, float, float, float]


@runtime_checkable
class FaceDetector(Protocol):
    """Face boxes (fractions of the frame) per frame, a batch of frames at a time."""

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]: ...

    def provenance(self) -> dict[str, str]: ...


@runtime_checkable
class NsfwDetector(Protocol):
    """Labelled detections (class, score, box) in one frame."""

    def detect(self, pixels: np.ndarray) -> list[Any]: ...


@runtime_checkable
class TextReader(Protocol):
    """OCR: the text lines of one frame above a confidence."""

    def read(self, pixels: np.ndarray, min_confidence: float) -> list[Any]: ...


@runtime_checkable
class VoiceActivity(Protocol):
    """Speech probability per short chunk of each waveform, a batch of waveforms at a time."""

    def chunk_probs(self, waves: list[np.ndarray], sample_rate: int) -> list[np.ndarray]: ...


@runtime_checkable
class Recognizer(Protocol):
    """Words with times from mono float32 samples at 16 kHz."""

    name: str

    def transcribe(self, samples: np.ndarray) -> list[Any]: ...


@runtime_checkable
class PitchTracker(Protocol):
    """Median f0 (None when unvoiced) and voiced share of each window, a batch of windows at a time."""

    def pitch(self, batch: Sequence[np.ndarray]) -> list[tuple[float | None, float]]: ...


@dataclass(frozen=True)
class ModelSpec:
    """How a model is built and what ships it."""

    kind: type
    module: str
    loader: str  # a function of `module`: (**options) -> the model, cached per process
    package: str  # the distribution that carries the code and weights


MODELS: dict[str, ModelSpec] = {
    "faces.mtcnn": ModelSpec(FaceDetector, "mmfs.encoders.faces_mtcnn", "load_faces", "facenet-pytorch"),
    "nsfw.nudenet": ModelSpec(NsfwDetector, "mmfs.encoders.nsfw_nudenet", "load_nudenet", "nudenet"),
    "ocr.rapidocr": ModelSpec(TextReader, "mmfs.encoders.ocr_rapid", "load_ocr", "rapidocr-onnxruntime"),
    "vad.silero": ModelSpec(VoiceActivity, "mmfs.encoders.speech_vad", "load_vad", "silero-vad"),
    "asr.pocketsphinx": ModelSpec(
        Recognizer, "mmfs.encoders.speech_asr", "load_pocketsphinx", "pocketsphinx"
    ),
    "asr.whisper": ModelSpec(Recognizer, "mmfs.encoders.speech_asr", "load_whisper", "transformers"),
    "pitch.torchcrepe": ModelSpec(PitchTracker, "mmfs.encoders.audio_torchcrepe", "load_crepe", "torchcrepe"),
}

M = TypeVar("M")


def register_model(name: str, spec: ModelSpec) -> None:
    """Make a model available as `name` (a plugin's, or a test's); a second spec for a name is refused."""
    if name in MODELS and MODELS[name] != spec:
        raise ValueError(f"model name '{name}' is already registered by {MODELS[name].module}")
    MODELS[name] = spec


def spec_of(name: str) -> ModelSpec:
    """The registered spec of `name`; a ConfigError listing the known models otherwise."""
    spec = MODELS.get(name)
    if spec is None:
        raise ConfigError(f"unknown model '{name}'; known models: {', '.join(sorted(MODELS))}")
    return spec


def describe_model(name: str) -> dict[str, str]:
    """What a model is, without loading it or importing its module: name, kind, package version."""
    spec = spec_of(name)
    try:
        version = importlib.metadata.version(spec.package)
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return {"name": name, "kind": spec.kind.__name__, "package": f"{spec.package}=={version}"}


def load_model(name: str, kind: type[M], **options: Any) -> M:
    """The model `name`, built once per process by its loader, checked to be a `kind`."""
    spec = spec_of(name)
    if spec.kind is not kind:
        raise ConfigError(f"model '{name}' is a {spec.kind.__name__}, not a {kind.__name__}")
    model = getattr(importlib.import_module(spec.module), spec.loader)(**options)
    if not isinstance(model, kind):
        raise TypeError(f"model '{name}' ({type(model).__name__}) does not implement {kind.__name__}")
    return model
