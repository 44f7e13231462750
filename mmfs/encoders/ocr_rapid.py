"""OCR of frames and images with RapidOCR (PP-OCRv4 detection + recognition, ONNX Runtime, CPU).

The three ONNX models ship inside the `rapidocr-onnxruntime` wheel, so nothing downloads at run
time. The wheel's metadata asks for the non-headless OpenCV, so the project installs it `--no-deps`
(Makefile) beside its real dependencies (pyclipper, shapely, onnxruntime, in pyproject).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.analysis_common import cpu_threads, file_sha256, require
from mmfs.errors import EncoderError, ErrorCode

INSTALL = "pip install --no-deps rapidocr-onnxruntime==1.4.4 && pip install pyclipper shapely onnxruntime"
MODEL_FILES = (
    "ch_PP-OCRv4_det_infer.onnx",
    "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "ch_PP-OCRv4_rec_infer.onnx",
)


@dataclass(frozen=True)
class OcrLine:
    """One line of text found in a frame: its words, the recogniser's confidence, its box (fractions)."""

    text: str
    confidence: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame


class RapidOcr:
    """A loaded RapidOCR engine; one per process (see `load_ocr`), calls serialised by a lock."""

    def __init__(self, det_side: int, threads: int) -> None:
        module = require("rapidocr_onnxruntime", "image.ocr", INSTALL)
        self.det_side = det_side
        self._lock = threading.Lock()
        self._engine = module.RapidOCR(
            det_limit_side_len=det_side, intra_op_num_threads=threads, inter_op_num_threads=1
        )
        self.model_dir = Path(str(module.__file__)).parent / "models"

    def provenance(self) -> dict[str, str]:
        """Model names and weights hashes: what `text` rows with source `ocr` were read by."""
        hashes = {name: file_sha256(str(self.model_dir / name))[:16] for name in MODEL_FILES}
        return {"name": "ocr.rapidocr", "weights_sha256": repr(hashes), "det_side": str(self.det_side)}

    def read(self, pixels: np.ndarray, min_confidence: float) -> list[OcrLine]:
        """The lines of an RGB frame at or above `min_confidence`, top to bottom."""
        import cv2

        bgr = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2BGR)
        try:
            with self._lock:
                result, _ = self._engine(bgr)
        except (RuntimeError, ValueError, cv2.error) as err:
            raise EncoderError(f"ocr failed: {err}", code=ErrorCode.ENCODER_FAILED) from err
        height, width = pixels.shape[:2]
        lines = [_line(item, width, height) for item in result or []]
        kept = [ln for ln in lines if ln.text and ln.confidence >= min_confidence]
        return sorted(kept, key=lambda ln: (round(ln.box[1], 2), ln.box[0]))


def _line(item: Any, width: int, height: int) -> OcrLine:
    """RapidOCR's [quad, text, score] as an OcrLine with an axis-aligned fractional box."""
    quad = np.asarray(item[0], dtype=np.float64)
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    box = (x0 / width, y0 / height, x1 / width, y1 / height)
    return OcrLine(str(item[1]).strip(), float(item[2]), tuple(float(np.clip(v, 0, 1)) for v in box))  # type: ignore[arg-type]


@cache
def load_ocr(det_side: int = 256, threads: int | None = None) -> RapidOcr:
    """The process's OCR engine for these settings, loaded once."""
    return RapidOcr(det_side, threads or cpu_threads())


def join_lines(lines: list[OcrLine]) -> str:
    """The lines of one frame as one text, in reading order (what is embedded and searched)."""
    return " ".join(ln.text for ln in lines)
