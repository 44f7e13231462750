"""OpenLineage events of real runs: START and COMPLETE (file, HTTP) match the `runs` row; FAIL on failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mmfs.ops.lineage import dataset_name, dataset_namespace
from mmfs.store.db import Store

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class _Collector(BaseHTTPRequestHandler):
    """An OpenLineage endpoint that keeps what it is sent."""

    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def _mmfs(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mmfs.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=600)


@pytest.mark.slow
def test_events_match_the_runs_row_in_a_file_and_over_http(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data, store, events = tmp_path / "data", tmp_path / "store", tmp_path / "lineage" / "events.jsonl"
    data.mkdir()
    (data / "a.txt").write_text("A lighthouse guides ships at night.")
    (data / "empty.mp4").write_bytes(b"")
    config = tmp_path / "run.yaml"
    url = f"http://127.0.0.1:{server.server_port}"
    config.write_text(
        "index: {auto: false}\nmaintenance: {auto: false}\n"
        f"lineage: {{file: {events}, url: '{url}', namespace: nightly, api_key: s3cret}}\n"
    )
    try:
        done = _mmfs("run", str(data), "--store", str(store), "--config", str(config), "--json", "--quiet")
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    sent = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["eventType"] for e in sent] == ["START", "COMPLETE"]
    start, complete = sent
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert (complete["job"]["namespace"], complete["job"]["name"]) == ("nightly", "mmfs.run")
    assert [(i["namespace"], i["name"]) for i in start["inputs"]] == [("file", str(data.resolve()))]
    run = Store(store).read("runs").to_pylist()[0]
    facet = complete["run"]["facets"]["mmfs_run"]
    assert facet["runId"] == run["run_id"] and facet["configHash"] == run["config_hash"]
    assert (facet["nOk"], facet["nQuarantined"]) == (run["n_ok"], run["n_quarantined"]) == (1, 1)
    versions = json.loads(run["table_versions"])
    outputs = {o["name"]: o for o in complete["outputs"]}
    assert set(outputs) == set(versions) and {"media", "segments", "text"} <= set(outputs)
    rows = json.loads(run["rows"])
    for table, output in outputs.items():
        assert output["namespace"] == f"file://{store.resolve()}"
        if table != "runs":  # the runs row itself records the versions before its own commit
            assert output["facets"]["version"]["datasetVersion"] == str(versions[table])
        assert output["outputFacets"]["outputStatistics"]["rowCount"] == rows.get(table, 0)
    posted = _Collector.received
    assert [p for p, _ in posted] == ["/api/v1/lineage"] * 2
    assert [e for _, e in posted] == sent  # the same events over HTTP as in the file


@pytest.mark.slow
def test_a_failed_run_sends_fail(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    (tmp_path / "run.yaml").write_text(f"lineage: {{file: {events}}}\n")
    (tmp_path / "a.txt").write_text("words")
    not_a_store = tmp_path / "store"
    not_a_store.write_text("a file where the store should be")
    done = _mmfs(
        "run", str(tmp_path / "a.txt"), "--store", str(not_a_store), "--config", str(tmp_path / "run.yaml")
    )
    assert done.returncode == 1, done.stderr
    sent = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["eventType"] for e in sent] == ["START", "FAIL"]
    assert sent[0]["run"]["runId"] == sent[1]["run"]["runId"]
    assert sent[1]["run"]["facets"]["errorMessage"]["message"]


def test_dataset_names_for_paths_and_object_stores(tmp_path: Path) -> None:
    assert (dataset_namespace(str(tmp_path)), dataset_name(str(tmp_path))) == (
        "file",
        str(tmp_path.resolve()),
    )
    assert (dataset_namespace("s3://bucket/in/x"), dataset_name("s3://bucket/in/x")) == (
        "s3://bucket",
        "/in/x",
    )
