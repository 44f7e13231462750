"""The peers benchmark's lean reference: the same video work as a plain sequential script.

`python lean_job.py [--channels-last | --rewrite] OUT.lance FPS CLIP...` in mmfs's own venv
(benchmarks/bench_peers.py runs it; `--channels-last` puts the model and its input in NHWC, as mmfs
does on the CPU; `--rewrite` also applies mmfs's CPU rewrite of the graph, imported from mmfs):
for each clip in turn, decord reads the frames at FPS, resized to 224x224 in the decoder (what Daft's
and Ray's readers hand their UDFs), EfficientNet-Lite0 embeds them in batches of 16 on every core
torch takes by default, and one Lance write takes all the rows at the end. No overlap between decoding
and embedding: what the pipeline frameworks must beat by overlapping their stages.
"""

from __future__ import annotations

import sys

import av  # noqa: F401  (PyAV before decord, as in mmfs: decord's bundled codecs break PyAV's otherwise)
import decord
import lance
import numpy as np
import pyarrow as pa

from peers.model import embed, load_lite0

SIDE = 224
DIM = 1280
BATCH = 16


def main(out: str, fps: float, clips: list[str], channels_last: bool = False, rewrite: bool = False) -> None:
    model = load_lite0(channels_last, rewrite)
    paths, indexes, times, vectors = [], [], [], []
    for clip in clips:
        reader = decord.VideoReader(clip, width=SIDE, height=SIDE)
        step = max(1, round(reader.get_avg_fps() / fps))
        wanted = list(range(0, len(reader), step))
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            frames = reader.get_batch(chunk).asnumpy()
            vectors.append(embed(model, frames))
            paths += [clip] * len(chunk)
            indexes += chunk
            times += [i / reader.get_avg_fps() for i in chunk]
    flat = np.concatenate(vectors).reshape(-1)
    table = pa.table(
        {
            "path": paths,
            "frame_index": pa.array(indexes, pa.int64()),
            "frame_time": pa.array(times, pa.float64()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), DIM),
        }
    )
    lance.write_dataset(table, out)


if __name__ == "__main__":
    args = sys.argv[1:]
    flag = args[0] if args[0] in ("--channels-last", "--rewrite") else ""
    args = args[1:] if flag else args
    main(args[0], float(args[1]), args[2:], channels_last=bool(flag), rewrite=flag == "--rewrite")
