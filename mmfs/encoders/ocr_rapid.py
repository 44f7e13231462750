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
WORD_GAP = 0.28  # ink-free columns this share of the line's height wide (or wider) part two words
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
            with self._lock:  # character boxes too: they show the gaps between words (see _with_gaps)
                result, _ = self._engine(bgr, return_word_box=True)
        except (RuntimeError, ValueError, cv2.error) as err:
            raise EncoderError(f"ocr failed: {err}", code=ErrorCode.ENCODER_FAILED) from err
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        lines = [_line(item, grey) for item in result or []]
        kept = [ln for ln in lines if ln.text and ln.confidence >= min_confidence]
        return sorted(kept, key=lambda ln: (round(ln.box[1], 2), ln.box[0]))


def _line(item: Any, grey: np.ndarray) -> OcrLine:
    """RapidOCR's [quad, text, score, char boxes, chars, ...] as an OcrLine with a fractional box."""
    height, width = grey.shape[:2]
    quad = np.asarray(item[0], dtype=np.float64)
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    box = (x0 / width, y0 / height, x1 / width, y1 / height)
    text = str(item[1])
    if len(item) >= 5 and item[3] and len(item[3]) == len(item[4]):
        gaps = word_gaps(grey, (int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))))
        text = _with_gaps([str(c) for c in item[4]], [_centre_x(q) for q in item[3]], gaps)
    return OcrLine(text.strip(), float(item[2]), tuple(float(np.clip(v, 0, 1)) for v in box))  # type: ignore[arg-type]


def word_gaps(grey: np.ndarray, box: tuple[int, int, int, int]) -> list[float]:
    """The x centres of the gaps between words in a line's box of a grey frame, read from its pixels.

    The recogniser reads a whole line (detection at a small size makes one box per line) and, for
    print large against its letter spacing, often drops the spaces ("GARDENPARTY"). The pixels still
    show them: a run of ink-free columns at least WORD_GAP of the line's height wide and twice the
    median gap between letters.
    """
    x0, y0, x1, y1 = max(box[0], 0), max(box[1], 0), box[2], box[3]
    crop = grey[y0:y1, x0:x1]
    if crop.size == 0 or crop.shape[1] < 3:
        return []
    import cv2

    level, _ = cv2.threshold(np.ascontiguousarray(crop), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = crop < level
    ink = dark if dark.mean() < 0.5 else ~dark  # ink is the minority, dark on light or light on dark
    columns: list[bool] = np.asarray(ink.any(axis=0), dtype=bool).tolist()
    runs, start = [], None
    for x, inked in enumerate(columns):
        if not inked and start is None:
            start = x
        elif inked and start is not None:
            if start > 0:  # a run touching the box's left edge is margin, not a gap
                runs.append((start, x - start))
            start = None
    if not runs:
        return []
    floor = max(WORD_GAP * crop.shape[0], 2.0 * float(np.median([n for _, n in runs])))
    return [x0 + s + n / 2 for s, n in runs if n >= floor]


def _centre_x(quad: Any) -> float:
    xs = [float(p[0]) for p in quad]
    return (min(xs) + max(xs)) / 2


def _with_gaps(chars: list[str], centres: list[float], gaps: list[float]) -> str:
    """The characters joined, with a space at each word gap where the recogniser put none."""
    out: list[str] = []
    pending = sorted(gaps)
    for ch, centre in zip(chars, centres, strict=True):
        passed = [g for g in pending if g < centre]
        if passed and out and out[-1] != " " and ch != " ":
            out.append(" ")
        pending = [g for g in pending if g >= centre]
        out.append(ch)
    return "".join(out)


@cache
def load_ocr(det_side: int = 256, threads: int | None = None) -> RapidOcr:
    """The process's OCR engine for these settings, loaded once."""
    return RapidOcr(det_side, threads or cpu_threads())


def join_lines(lines: list[OcrLine]) -> str:
    """The lines of one frame as one text, in reading order (what is embedded and searched)."""
    return " ".join(ln.text for ln in lines)
