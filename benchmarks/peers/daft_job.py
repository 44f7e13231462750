"""The peers benchmark's Daft side: video frames at 1 fps, EfficientNet-Lite0 per frame, rows into Lance.

`python daft_job.py OUT.lance FPS CLIP...` in `.venv-peers` (benchmarks/bench_peers.py runs it, with
DAFT_SCANTASK_MAX_PARALLEL=1: Daft 0.7.26's video scan deadlocks without it). Daft's own reader
(`read_video_frames`, PyAV, resized to 224x224 in the scan), a class UDF that loads the model once and
embeds a batch of frames, and Daft's Lance writer: what a Daft user would write.
"""

from __future__ import annotations

import sys

import daft
import numpy as np
import torch  # noqa: F401  (first import on the main thread: Daft segfaults when a UDF thread does it)
from daft import DataType

from peers.model import embed, load_lite0

SIDE = 224
DIM = 1280


@daft.cls
class Lite0:
    """EfficientNet-Lite0, loaded once per UDF instance."""

    def __init__(self) -> None:
        self.model = load_lite0()

    @daft.method.batch(return_dtype=DataType.embedding(DataType.float32(), DIM), batch_size=16)
    def __call__(self, frames: daft.Series) -> np.ndarray:
        batch = np.stack([np.asarray(f) for f in frames.to_pylist()])
        return embed(self.model, batch)


def main(out: str, fps: float, clips: list[str]) -> None:
    df = daft.read_video_frames(clips, image_height=SIDE, image_width=SIDE, sample_interval_seconds=1.0 / fps)
    df = df.with_column("embedding", Lite0()(df["data"]))
    df = df.select("path", "frame_index", "frame_time", "embedding")
    df.write_lance(out)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3:])
