"""`mmfs serve` as a user starts it: a real process listening on loopback, stopped by a signal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.web.conftest import SampleStore

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_on_loopback(sample_store: SampleStore) -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "mmfs.cli",
        "serve",
        "--store",
        str(sample_store.store),
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, body = time.monotonic() + 120, None
        while body is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.3)
        assert body is not None, "mmfs serve did not answer"
        assert [r["run_id"] for r in body["runs"]] == [sample_store.run_id]
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert f"serving {sample_store.store} on http://127.0.0.1:{port}/" in err


def test_serve_without_a_store_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    result = subprocess.run(
        [sys.executable, "-m", "mmfs.cli", "serve", "--store", str(missing)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.strip() == f"mmfs: error: no store at {missing}"
