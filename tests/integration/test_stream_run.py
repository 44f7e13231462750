"""The local runner on the streaming executor: bounded items in flight, its budget and memory in the
summary, and a re-run with nothing to do that imports no torch and loads no model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmfs.config import config_from_dict
from mmfs.pipelines.run import run_pipeline
from mmfs.report import run_text
from mmfs.store.db import Store
from mmfs.store.fragments import pending_records
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS
from tests.store_diff import COMPARED_TABLES, table_differences

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "runner": {"batch_media": 2, "queue_media": 3, "batch_wait_s": 0.2, "isolate_decode": False},
    "index": {"auto": False},
    "maintenance": {"auto": False},
    "encoders": FAKE_ENCODERS,
}
N_NOTES, N_IMAGES = 14, 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("stream") / "data"
    for i in range(N_NOTES):
        mf.write_text(data / f"note_{i:02d}.txt", f"Note {i}: the ferry leaves the harbour at {i + 6}.")
    for i in range(N_IMAGES):
        mf.write_image(data / f"photo_{i}.png", width=64, height=48, seed=i)
    return data


def test_a_run_holds_at_most_the_queue_and_reports_its_budget_and_memory(
    corpus: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    summary = run_pipeline([str(corpus)], config_from_dict(CONFIG), store, show_progress=False)
    n = N_NOTES + N_IMAGES
    assert summary.n_ok == n and Store(store).count("media") == n
    assert summary.stream["items"] == n and summary.stream["in_flight_limit"] == 3
    assert 1 <= summary.stream["max_in_flight"] <= 3  # 18 items, never more than 3 decoded at once
    assert summary.stream["batches"] >= n // 2
    assert set(summary.threads) == {"decode", "model", "torch", "cores"} and summary.threads["decode"] >= 1
    assert summary.peak_rss_mb > 0
    text = run_text(summary)
    assert "peak RSS" in text and f"{summary.threads['decode']} decode" in text
    doc = json.loads(json.dumps(summary.as_dict()))
    assert doc["threads"] == summary.threads and doc["peak_rss_mb"] == summary.peak_rss_mb


def test_a_rerun_with_nothing_to_do_imports_no_torch(corpus: Path, tmp_path: Path) -> None:
    """The whole process, as `mmfs run` on a done folder: planning reads the ledger, nothing loads."""
    store = tmp_path / "store"
    cfg = config_from_dict(CONFIG)
    run_pipeline([str(corpus)], cfg, store, show_progress=False)
    config = tmp_path / "cfg.json"
    config.write_text(cfg.model_dump_json())
    code = (
        "import sys, json;"
        "from mmfs.config import PipelineConfig;"
        "from mmfs.pipelines.run import run_pipeline;"
        f"cfg = PipelineConfig.model_validate_json(open({str(config)!r}).read());"
        f"s = run_pipeline([{str(corpus)!r}], cfg, {str(store)!r}, show_progress=False);"
        "heavy = sorted({'torch', 'transformers', 'sentence_transformers', 'spacy'} & set(sys.modules));"
        "print(json.dumps({'skipped': s.n_skipped, 'ok': s.n_ok, 'heavy': heavy}))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc == {"skipped": N_NOTES + N_IMAGES, "ok": 0, "heavy": []}


def test_rows_are_staged_while_they_wait_for_the_commit_and_land_the_same(
    corpus: Path, tmp_path: Path
) -> None:
    """With `runner.stage_bytes` at one byte every batch's rows go to data files at once, so the most
    held in memory is one batch (not the run's rows, as when they all wait for the one commit), and
    the store ends with the same rows and the same versions."""
    runs = {}
    for name, stage_bytes in (("staged", 1), ("held", 2**30)):
        cfg = config_from_dict({**CONFIG, "runner": {**CONFIG["runner"], "stage_bytes": stage_bytes}})
        runs[name] = (tmp_path / name, run_pipeline([str(corpus)], cfg, tmp_path / name, show_progress=False))
    (staged_dir, staged), (held_dir, held) = runs["staged"], runs["held"]
    assert staged.stream["commits"] == held.stream["commits"] == 1
    # a part per batch, against one part written at the commit from rows held all along
    assert staged.stream["staged_parts"] == staged.stream["batches"] and held.stream["staged_parts"] == 1
    assert 0 < staged.stream["max_held_row_bytes"] < held.stream["max_held_row_bytes"] / 4  # 9 batches
    problems = [p for t in COMPARED_TABLES for p in table_differences(Store(held_dir), Store(staged_dir), t)]
    assert not problems, "\n".join(problems)
    assert Store(staged_dir).versions() == Store(held_dir).versions()
    assert not pending_records(Store(staged_dir))  # every staged part committed, its record removed
