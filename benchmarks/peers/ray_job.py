"""The peers benchmark's Ray Data side: video frames at 1 fps, EfficientNet-Lite0 per frame, rows into Lance.

`python ray_job.py OUT.lance FPS CLIP...` in `.venv-peers` (benchmarks/bench_peers.py runs it). Ray
Data's own reader (`read_videos`: decord, a frame stride of source fps / fps, resized to 224x224 at
decode), an actor pool that loads the model once per actor, and lance-ray's `write_lance` (Ray's own
`Dataset.write_lance` fails against pylance 14): what a Ray Data user would write on one machine.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import torch  # noqa: F401  (loaded before Ray starts its workers)

from peers.model import embed, load_lite0

SIDE = 224


class Lite0:
    """EfficientNet-Lite0, loaded once per actor."""

    def __init__(self) -> None:
        self.model = load_lite0()

    def __call__(self, batch: dict[str, Any]) -> pa.Table:
        vectors = embed(self.model, np.asarray(batch["frame"]))
        flat = pa.array(vectors.reshape(-1), pa.float32())
        return pa.table(
            {
                "path": pa.array([str(p) for p in batch["path"]], pa.string()),
                "frame_index": pa.array(np.asarray(batch["frame_index"], np.int64)),
                "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
            }
        )


def main(out: str, fps: float, clips: list[str]) -> None:
    import lance_ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ds = ray.data.read_videos(clips, fps=max(1, round(fps)), resize=(SIDE, SIDE), include_paths=True)
    ds = ds.map_batches(Lite0, batch_size=16, concurrency=1)
    lance_ray.write_lance(ds, out)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3:])
