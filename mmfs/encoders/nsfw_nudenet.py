"""Exposed-content (NSFW) detection with NudeNet's ONNX detector (320n, inside the `nudenet` wheel).

The detector returns labelled boxes (`FACE_FEMALE`, `BELLY_EXPOSED`, `FEMALE_BREAST_EXPOSED`, ...).
A frame's `nsfw_score` is the highest score among the explicit classes (EXPLICIT_CLASSES), 0 when
none is found, and the frame is flagged `nsfw` when that score reaches `image.nsfw_threshold`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.analysis_common import cpu_threads, file_sha256, require
from mmfs.errors import EncoderError, ErrorCode

INSTALL = "pip install nudenet==3.4.2"
EXPLICIT_CLASSES: frozenset[str] = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)


@dataclass(frozen=True)
class Detection:
    """One labelled box from the detector (box in pixels of the frame: x, y, w, h)."""

    label: str
    score: float
    box: tuple[int, int, int, int]


def nsfw_score(detections: list[Detection], classes: Collection[str] = EXPLICIT_CLASSES) -> float:
    """The highest score among the explicit classes, 0.0 when the frame has none."""
    return max((d.score for d in detections if d.label in classes), default=0.0)


def is_nsfw(score: float, threshold: float) -> bool:
    """The flag rule: a frame is NSFW when its explicit-class score reaches the threshold."""
    return score >= threshold


class NudeNet:
    """A loaded NudeNet detector; one per process (see `load_nudenet`)."""

    def __init__(self, threads: int) -> None:
        module = require("nudenet", "image.nsfw", INSTALL)
        import onnxruntime

        self.model_path = Path(str(module.__file__)).parent / "320n.onnx"
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self._lock = threading.Lock()
        self._detector = module.NudeDetector()
        # the package builds its session with every core; rebuild it with the threads we were given
        self._detector.onnx_session = onnxruntime.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def provenance(self) -> dict[str, str]:
        """Model name and weights hash: what `frames.nsfw_score` was computed by."""
        return {"name": "nsfw.nudenet_320n", "weights_sha256": file_sha256(str(self.model_path))}

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        """Every labelled box NudeNet finds in an RGB frame (its own 0.2 score floor and NMS)."""
        import cv2

        bgr = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2BGR)
        try:
            with self._lock:
                raw: list[dict[str, Any]] = self._detector.detect(bgr)
        except (RuntimeError, ValueError, cv2.error) as err:
            raise EncoderError(f"nsfw detection failed: {err}", code=ErrorCode.ENCODER_FAILED) from err
        return [Detection(str(d["class"]), float(d["score"]), tuple(d["box"])) for d in raw]  # type: ignore[arg-type]


@cache
def load_nudenet(threads: int | None = None) -> NudeNet:
    """The process's NudeNet detector, loaded once."""
    return NudeNet(threads or cpu_threads())
