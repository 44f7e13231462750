"""Face detection with MTCNN (facenet-pytorch): boxes and confidences per frame, batched by size.

Only the MTCNN part of facenet-pytorch is used: its three small networks ship in the wheel
(`facenet_pytorch/data/{p,r,o}net.pt`); the face-embedding model, which downloads, is never loaded.
The package is installed `--no-deps` (its metadata pins old torch and numpy).
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

import numpy as np

from mmfs.encoders.analysis_common import file_sha256, require
from mmfs.encoders.devices import resolve_device
from mmfs.errors import EncoderError, ErrorCode

INSTALL = "pip install --no-deps facenet-pytorch==2.6.0"
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame


class MtcnnFaces:
    """A loaded MTCNN; one per process and device (see `load_faces`)."""

    def __init__(self, device: str, min_confidence: float, min_face_px: int) -> None:
        require("facenet_pytorch", "image.faces", INSTALL)
        from facenet_pytorch.models.mtcnn import MTCNN

        self.device = resolve_device(device)
        self.min_confidence = min_confidence
        self._lock = threading.Lock()
        self._model = MTCNN(keep_all=True, device=self.device, min_face_size=min_face_px)
        self._model.eval()
        import facenet_pytorch

        self.weights_dir = Path(facenet_pytorch.__file__).parent / "data"

    def provenance(self) -> dict[str, str]:
        """Model name and weights hash: what `frames.n_faces` was computed by."""
        hashes = {n: file_sha256(str(self.weights_dir / n))[:16] for n in ("pnet.pt", "rnet.pt", "onet.pt")}
        return {
            "name": "faces.mtcnn",
            "weights_sha256": repr(hashes),
            "min_confidence": str(self.min_confidence),
        }

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """Face boxes per RGB frame; frames of the same size go through the networks together."""
        out: list[list[Box]] = [[] for _ in frames]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for shape, indices in by_shape.items():
            batch = np.stack([frames[i] for i in indices])
            for i, boxes in zip(indices, self._detect_batch(batch), strict=True):
                out[i] = [(b[0] / shape[1], b[1] / shape[0], b[2] / shape[1], b[3] / shape[0]) for b in boxes]
        return out

    def _detect_batch(self, batch: np.ndarray) -> list[list[Box]]:
        import torch

        try:
            with self._lock, torch.inference_mode():
                boxes, probs = self._model.detect(batch)
        except (RuntimeError, ValueError) as err:
            raise EncoderError(f"face detection failed: {err}", code=ErrorCode.ENCODER_FAILED) from err
        result: list[list[Box]] = []
        for frame_boxes, frame_probs in zip(boxes, probs, strict=True):
            if frame_boxes is None:
                result.append([])
                continue
            keep = [
                tuple(float(v) for v in b)
                for b, p in zip(frame_boxes, frame_probs, strict=True)
                if p is not None and p >= self.min_confidence
            ]
            result.append(keep)  # type: ignore[arg-type]
        return result


@cache
def load_faces(device: str = "cpu", min_confidence: float = 0.9, min_face_px: int = 20) -> MtcnnFaces:
    """The process's face detector for these settings, loaded once."""
    return MtcnnFaces(device, min_confidence, min_face_px)
