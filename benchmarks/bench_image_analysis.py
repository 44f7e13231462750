"""Per-frame cost of the image analyses, through mmfs and through the raw library, in the same run.

Run with `make bench-image` (or `python benchmarks/bench_image_analysis.py [--frames N] [--repeat N]`).
Frames are real photos (scikit-image) at the pipeline's decode size (short side 256), some with a
line of rendered text. For each analysis it prints ms/frame through mmfs, ms/frame of the raw library
doing the same work, and the ratio of their rates (raw time / mmfs time; 1.0 means no overhead):
- classical features (`image.features`) vs the same OpenCV calls inline;
- OCR (`RapidOcr.read`) vs `RapidOCR()(frame)` with the same settings;
- faces (`MtcnnFaces.detect`, batched per frame size) vs `MTCNN.detect` on each frame;
- NSFW (`NudeNet.detect` + score) vs `NudeDetector.detect`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from mmfs.config import ImageConfig
from mmfs.transforms.image.features import image_features
from mmfs.transforms.image.pixels import resize_short_side


def frames(n: int) -> list[np.ndarray]:
    """N RGB frames, short side 256: skimage photos, every other one with a line of text drawn on."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    out = []
    for i in range(n):
        frame = resize_short_side(photos[i % len(photos)], 256).copy()
        if i % 2:
            frame[100:150, :] = 240
            cv2.putText(frame, f"HARBOUR {1900 + i}", (8, 136), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
        out.append(frame)
    return out


def timed(raw: Callable[[], Any], mmfs: Callable[[], Any], n: int, repeat: int) -> dict[str, float]:
    """Best time of each side, alternated so a change in load weighs on both alike; ms per frame."""
    best = {"raw": float("inf"), "mmfs": float("inf")}
    for _ in range(repeat):
        for name, fn in (("raw", raw), ("mmfs", mmfs)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {
        "raw_ms_per_frame": round(best["raw"] / n * 1000, 2),
        "mmfs_ms_per_frame": round(best["mmfs"] / n * 1000, 2),
        "ratio": round(best["raw"] / best["mmfs"], 3),
    }


def raw_features(frame: np.ndarray) -> tuple[Any, ...]:
    """The classical features with OpenCV calls written out inline (the reference)."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    hists = [cv2.calcHist([hsv], [c], None, [8], [0, u]) for c, u in ((0, 180), (1, 256), (2, 256))]
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(g, 100, 200)
    return hists, np.count_nonzero(edges), cv2.Laplacian(g, cv2.CV_64F).var(), g.mean(), g.std()


def bench(n: int, repeat: int) -> dict[str, Any]:
    """Every analysis on the same frames; models loaded before timing."""
    from facenet_pytorch.models.mtcnn import MTCNN
    from nudenet import NudeDetector
    from rapidocr_onnxruntime import RapidOCR

    from mmfs.encoders.analysis_common import cpu_threads
    from mmfs.encoders.faces_mtcnn import load_faces
    from mmfs.encoders.nsfw_nudenet import load_nudenet, nsfw_score
    from mmfs.encoders.ocr_rapid import load_ocr

    cfg, threads, batch = ImageConfig(), cpu_threads(), frames(n)
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in batch]
    ocr, faces, nude = load_ocr(cfg.ocr_det_side, threads), load_faces("cpu"), load_nudenet(threads)
    raw_ocr = RapidOCR(
        det_limit_side_len=cfg.ocr_det_side, intra_op_num_threads=threads, inter_op_num_threads=1
    )
    raw_mtcnn = MTCNN(keep_all=True, device="cpu")
    raw_nude = NudeDetector()
    faces.detect(batch[:1]), raw_mtcnn.detect(batch[0])  # first calls pay one-off set-up
    return {
        "frames": n,
        "threads": threads,
        "features": timed(
            lambda: [raw_features(f) for f in batch], lambda: [image_features(f) for f in batch], n, repeat
        ),
        "ocr": timed(
            lambda: [raw_ocr(b) for b in bgr],
            lambda: [ocr.read(f, cfg.ocr_min_confidence) for f in batch],
            n,
            repeat,
        ),
        "faces_mtcnn": timed(
            lambda: [raw_mtcnn.detect(f) for f in batch], lambda: faces.detect(batch), n, repeat
        ),
        "nsfw_nudenet": timed(
            lambda: [raw_nude.detect(b) for b in bgr],
            lambda: [nsfw_score(nude.detect(f)) for f in batch],
            n,
            repeat,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = bench(args.frames, args.repeat)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
