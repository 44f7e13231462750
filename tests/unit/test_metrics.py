"""Prometheus metrics of a real run (textfile), live over HTTP, and the store's metrics on `mmfs serve`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mmfs.ops.metrics import RunMetrics, serve_metrics, store_registry
from mmfs.pipelines.run import RunSummary
from mmfs.runners.hooks import BatchEvent
from mmfs.stages.batch import BatchTally
from mmfs.store.db import Store
from mmfs.web.app import create_app

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
CONFIG = "index: {auto: false}\nmaintenance: {auto: false}\n"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(scope="module")
def metered_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str, int]:
    """`mmfs run --metrics-file` over two notes and an empty file: the store, summary, metrics, bytes."""
    root = tmp_path_factory.mktemp("metrics")
    data = root / "data"
    data.mkdir()
    (data / "a.txt").write_text("A lighthouse guides ships at night.")
    (data / "b.txt").write_text("Cockatoos perch on the old fence by the harbour.")
    (data / "empty.mp4").write_bytes(b"")
    (root / "run.yaml").write_text(CONFIG)
    store, out = root / "store", root / "textfile" / "mmfs.prom"
    argv = [sys.executable, "-m", "mmfs.cli", "run", str(data), "--store", str(store), "--json", "--quiet"]
    argv += ["--config", str(root / "run.yaml"), "--metrics-file", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    n_bytes = sum(p.stat().st_size for p in data.glob("*.txt"))
    return store, json.loads(done.stdout), out.read_text(), n_bytes


@pytest.mark.slow
def test_textfile_matches_the_run_summary(metered_run: tuple[Path, dict[str, Any], str, int]) -> None:
    _, summary, text, n_bytes = metered_run
    got = _samples(text)
    assert got[("mmfs_items_total", (("outcome", "ok"),))] == summary["n_ok"] - summary["n_degraded"] == 2
    assert got[("mmfs_items_total", (("outcome", "quarantined"),))] == summary["n_quarantined"] == 1
    for table, rows in summary["rows"].items():
        assert got[("mmfs_rows_written_total", (("table", table),))] == rows
    assert got[("mmfs_bytes_read_total", ())] == n_bytes  # the two notes; the empty file is never read
    assert got[("mmfs_runs_total", ())] == 1 and got[("mmfs_items_pending", ())] == 0
    stages = {labels[0][1] for (name, labels) in got if name == "mmfs_batch_stage_seconds_count"}
    assert "write" in stages and stages <= set(summary["stage_seconds"]) | {"write"}
    loads = {labels[0][1]: v for (name, labels), v in got.items() if name == "mmfs_model_load_seconds"}
    assert "text.minilm" in loads and all(v > 0 for v in loads.values())  # the text encoder was loaded
    for stage, seconds in summary["stage_seconds"].items():
        assert got[("mmfs_stage_seconds_total", (("stage", stage),))] == pytest.approx(seconds, abs=1e-6)


@pytest.mark.slow
def test_serve_exposes_the_store_at_metrics(metered_run: tuple[Path, dict[str, Any], str, int]) -> None:
    store, summary, _, _ = metered_run
    client = TestClient(create_app(store, store_registry(str(store))))
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    got = _samples(response.text)
    assert got[("mmfs_store_up", ())] == 1
    assert got[("mmfs_table_rows", (("table", "media"),))] == Store(store).count("media") >= 2
    assert got[("mmfs_table_version", (("table", "segments"),))] == summary["table_versions"]["segments"]
    assert got[("mmfs_last_run_items", (("outcome", "ok"),))] == 2


def test_live_metrics_over_http_during_a_run() -> None:
    metrics = RunMetrics()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve_metrics(metrics, port)
    metrics.items_planned(5)
    tally = BatchTally(n_ok=2, n_degraded=1, n_quarantined=1, stage_seconds={"decode": 0.3, "encode": 1.2})
    metrics.batch_done(BatchEvent(n_items=3, n_bytes=4096, tally=tally, written={"segments": 7, "media": 3}))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        live = _samples(response.read().decode())
    assert live[("mmfs_items_pending", ())] == 2  # the run's queue: planned minus committed
    assert live[("mmfs_items_total", (("outcome", "ok"),))] == 1
    assert live[("mmfs_items_total", (("outcome", "degraded"),))] == 1
    assert live[("mmfs_rows_written_total", (("table", "segments"),))] == 7
    assert live[("mmfs_batch_stage_seconds_bucket", (("le", "0.5"), ("stage", "decode")))] == 1
    assert live[("mmfs_batch_stage_seconds_bucket", (("le", "1.0"), ("stage", "encode")))] == 0
    summary = RunSummary(run_id="r", n_ok=3, n_degraded=1, n_quarantined=2, n_skipped=4, rows={"segments": 7})
    metrics.run_done(summary, 1.0e9)  # one item was unreadable before any batch: quarantined by the driver
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        after = _samples(response.read().decode())
    assert after[("mmfs_items_total", (("outcome", "quarantined"),))] == 2
    assert after[("mmfs_items_total", (("outcome", "skipped"),))] == 4
    assert after[("mmfs_rows_written_total", (("table", "segments"),))] == 7  # not counted twice
    assert after[("mmfs_items_pending", ())] == 0
