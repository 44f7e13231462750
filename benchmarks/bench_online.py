"""Latency of `POST /api/features` per item kind, through a real `mmfs serve` app over HTTP.

Run with `make bench-online` (or `python benchmarks/bench_online.py [--repeat N] [--clients N]
[--store DIR] [--json]`). Without `--store` it runs the sample data into a temporary store first
(default config). The app is served by uvicorn on loopback in this process; requests come over HTTP.

Per kind (video, audio, image, text: the sample files, uploaded) it sends one warm-up request (the
first loads the models), then `--repeat` requests one at a time, and prints the median, the 95th
percentile (of few samples: the largest but one) and the server's own split (decode and transforms
in `extract`; encoders, alignment and row layout in the batch). Then `--clients` clients send photos
at once, `--repeat` each, and it prints the items per second and the batch sizes the batcher made.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from mmfs.config import PipelineConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.pipelines.run import run_pipeline
from mmfs.web.app import create_app

KINDS = {
    "video": ("cockatoo.mp4", "cockatoo.srt"),  # 14 s, 1280x720, with sound and captions
    "audio": ("dashwood_speech.wav", "dashwood_speech.txt"),  # 7 s of speech, with its transcript
    "image": ("coffee.jpg", None),
    "text": ("scandal_in_bohemia.txt", None),
}


def serve(store: Path) -> tuple[uvicorn.Server, str]:
    """The app on a free loopback port, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(store), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def post(
    client: httpx.Client, base: str, name: str, sidecar: str | None, data: bytes | None = None
) -> tuple[float, dict[str, Any]]:
    """One upload (the sample file, or `data` under its name); its wall time and the server's answer."""
    files = {"file": (name, data if data is not None else (SAMPLE_DIR / name).read_bytes())}
    if sidecar:
        files["sidecar"] = (sidecar, (SAMPLE_DIR / sidecar).read_bytes())
    start = time.perf_counter()
    response = client.post(f"{base}/api/features", files=files, timeout=600)
    seconds = time.perf_counter() - start
    response.raise_for_status()
    return seconds, response.json()


def per_kind(base: str, repeat: int) -> dict[str, Any]:
    """Sequential latency per item kind, after one warm-up request each."""
    out = {}
    with httpx.Client() as client:
        for kind, (name, sidecar) in KINDS.items():
            first, _ = post(client, base, name, sidecar)
            runs = [post(client, base, name, sidecar) for _ in range(repeat)]
            walls = sorted(s for s, _ in runs)
            out[kind] = {
                "file": name,
                "first_s": round(first, 3),
                "p50_ms": round(1000 * statistics.median(walls), 1),
                "p95_ms": round(1000 * walls[max(0, round(0.95 * len(walls)) - 1)], 1),
                "extract_ms": round(1000 * statistics.median(b["seconds"]["extract"] for _, b in runs), 1),
                "batch_ms": round(1000 * statistics.median(b["seconds"]["embed_batch"] for _, b in runs), 1),
                "rows": sum(len(r) for r in runs[0][1]["tables"].values()),
            }
    return out


def photo_variants(n: int) -> list[bytes]:
    """N distinct JPEGs (the sample photos re-encoded at other qualities): the same bytes would be
    computed once per batch, so each request needs its own."""
    from PIL import Image

    names = ("coffee.jpg", "chelsea_cat.jpg", "rocket_launch.jpg")
    out = []
    for i in range(n):
        buffer = io.BytesIO()
        Image.open(SAMPLE_DIR / names[i % 3]).save(buffer, "JPEG", quality=60 + i % 40)
        out.append(buffer.getvalue())
    return out


def concurrent(base: str, clients: int, repeat: int) -> dict[str, Any]:
    """`clients` clients uploading distinct photos at once: items per second and the batch sizes seen."""
    sizes: list[int] = []
    photos = photo_variants(clients * repeat)

    def one_client(c: int) -> None:
        with httpx.Client() as client:
            for r in range(repeat):
                data = photos[c * repeat + r]
                sizes.append(post(client, base, f"photo{c}_{r}.jpg", None, data)[1]["batch_size"])

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one_client, range(clients)))
    seconds = time.perf_counter() - start
    return {
        "clients": clients,
        "items": len(sizes),
        "items_per_s": round(len(sizes) / seconds, 2),
        "batch_sizes": {str(n): sizes.count(n) for n in sorted(set(sizes))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="a store with a recorded run (default: the sample data)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mmfs-bench-online-"))
    try:
        store = args.store
        if store is None:
            store = tmp / "store"
            t0 = time.perf_counter()
            run_pipeline([str(SAMPLE_DIR)], PipelineConfig(), store, show_progress=False)
            print(f"sample data run into {store} in {time.perf_counter() - t0:.1f} s")
        server, base = serve(store)
        doc = {
            "per_kind": per_kind(base, args.repeat),
            "concurrent": concurrent(base, args.clients, args.repeat),
        }
        server.should_exit = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    heads = ("first s", "p50 ms", "p95 ms", "extract", "batch")
    print(f"{'kind':<7}{'file':<24}" + "".join(f"{h:>9}" for h in heads) + f"{'rows':>6}")
    for kind, r in doc["per_kind"].items():
        print(
            f"{kind:<7}{r['file']:<24}{r['first_s']:>9}{r['p50_ms']:>9}{r['p95_ms']:>9}"
            f"{r['extract_ms']:>9}{r['batch_ms']:>9}{r['rows']:>6}"
        )
    c = doc["concurrent"]
    print(f"{c['clients']} clients, {c['items']} photos: {c['items_per_s']} items/s,", end=" ")
    print(f"batch sizes {c['batch_sizes']}")


if __name__ == "__main__":
    main()
