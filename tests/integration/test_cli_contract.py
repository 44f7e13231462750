"""What the command line promises: every command registered, --json always one document, failures
counted the same by run, report and the tables, and a store kept inside its input folder left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmfs.store.db import Store

pytestmark = pytest.mark.slow
MMFS = [sys.executable, "-m", "mmfs.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _mmfs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MMFS, *args], capture_output=True, text=True, env=ENV, timeout=600)


@pytest.fixture(scope="module")
def inside(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A folder with a note and an empty file, run into a store kept inside that same folder."""
    data = tmp_path_factory.mktemp("inside")
    (data / "note.txt").write_text("Lighthouses guide ships at night. Keepers trim the lamps.")
    (data / "empty.mp4").write_bytes(b"")
    store = data / "store"
    result = _mmfs("run", str(data), "--store", str(store), "--json", "-q")
    assert result.returncode == 0, result.stderr
    return data, store, json.loads(result.stdout)


def test_every_command_is_registered_under_python_m() -> None:
    result = _mmfs("train-fusion", "--help")
    assert result.returncode == 0, result.stderr
    assert "Train the learned fusion projection" in result.stdout


def test_a_store_inside_its_input_folder_is_not_ingested(inside: tuple[Path, Path, dict]) -> None:
    data, store, summary = inside
    assert summary["n_inputs"] == 2 and summary["n_ok"] == 1 and summary["n_quarantined"] == 1
    rows = Store(store).read("quarantine", ["uri", "error_code", "error_name"]).to_pylist()
    # not the store's own mmfs.log; the code as a number and by the name plan and media.error use
    assert rows == [
        {"uri": str((data / "empty.mp4").resolve()), "error_code": 1001, "error_name": "EMPTY_FILE"}
    ]
    plan = _mmfs("plan", str(data), "--store", str(store), "--json")
    assert plan.returncode == 0, plan.stderr
    doc = json.loads(plan.stdout)
    assert doc["new"] == [] and doc["stale"] == [] and doc["n_inputs"] == 2 and doc["up_to_date"] == 1


def test_every_failure_has_a_media_row_and_the_counts_agree(inside: tuple[Path, Path, dict]) -> None:
    data, store, summary = inside
    failed = Store(store).read("media", ["media_id", "uri", "status", "error"]).to_pylist()
    failed = [r for r in failed if r["status"] == "failed"]
    empty = str((data / "empty.mp4").resolve())
    assert failed == [
        {
            "media_id": f"uri:{empty}",
            "uri": empty,
            "status": "failed",
            "error": "read: [EMPTY_FILE] empty.mp4: empty file (0 bytes)",
        }
    ]
    runs = json.loads(_mmfs("versions", "--store", str(store), "--json").stdout)["runs"]
    report = json.loads(_mmfs("report", runs[0]["run_id"], "--store", str(store), "--json").stdout)
    assert report["outcomes"]["failed"] == summary["n_quarantined"] == 1
    assert report["outcomes"]["ok"] == summary["n_ok"] == 1
    status = json.loads(_mmfs("status", "--store", str(store), "--json").stdout)
    assert sum(status["quarantine"].values()) == 1
    again = _mmfs("run", str(data), "--store", str(store), "--json", "-q")
    assert json.loads(again.stdout)["rows"] == {}  # the recorded failure is not written twice
    assert Store(store).count("media") == 2


def test_json_errors_are_one_document_on_stdout(inside: tuple[Path, Path, dict]) -> None:
    _, store, _ = inside
    result = _mmfs("sql", "SELEC nonsense", "--store", str(store), "--json")
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["error"]["exit_code"] == 2 and doc["error"]["code_name"] == "CONFIG_INVALID"
    assert doc["error"]["message"] and result.stderr.startswith("mmfs: error:")
    missing = _mmfs("status", "--store", str(store / "nowhere"), "--json")
    assert missing.returncode == 2 and json.loads(missing.stdout)["error"]["message"].startswith("no store")


def test_versions_text_shows_the_table_versions(inside: tuple[Path, Path, dict]) -> None:
    _, store, _ = inside
    result = _mmfs("versions", "--store", str(store))
    assert result.returncode == 0, result.stderr
    runs = json.loads(_mmfs("versions", "--store", str(store), "--json").stdout)["runs"]
    first = runs[0]
    wrote = next(line for line in result.stdout.splitlines() if line.strip().startswith("wrote:"))
    media_before = first["before"].get("media", "-")
    assert f"media {media_before}->{first['after']['media']}" in wrote
    assert "text " in wrote and "segments " in wrote
