"""Fixtures of the web tests: the sample data run once into a real store, and the app on loopback."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmfs.config import PipelineConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store


@dataclass(frozen=True)
class SampleStore:
    """The sample corpus ingested once: where the store and the data live, and the ids tests need."""

    store: Path
    data: Path
    run_id: str
    ids: dict[str, str]  # file name -> media_id


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> SampleStore:
    """`mmfs.data/sample` run through the pipeline (local runner) into a store, once per session."""
    root = tmp_path_factory.mktemp("web-sample")
    data = root / "data"
    shutil.copytree(SAMPLE_DIR, data)
    store_dir = root / "store"
    summary = run_pipeline([str(data)], PipelineConfig(), store_dir, show_progress=False)
    rows = Store(store_dir).read("media", ["media_id", "uri"]).to_pylist()
    return SampleStore(store_dir, data, summary.run_id, {Path(r["uri"]).name: r["media_id"] for r in rows})


@pytest.fixture(scope="session")
def live_server(sample_store: SampleStore) -> Iterator[str]:
    """The app served by uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    from mmfs.web.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(sample_store.store), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the app did not start within 30 s"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
