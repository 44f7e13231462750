"""The Airflow example: its DAG builds where Airflow is installed; its commands are mmfs's own."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _example() -> object:
    spec = importlib.util.spec_from_file_location("airflow_dag", ROOT / "examples" / "airflow_dag.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dag_builds_plan_then_run_nightly() -> None:
    pytest.importorskip("airflow", reason="apache-airflow is not installed: pip install 'mmfs[airflow]'")
    dag = _example().dag  # type: ignore[attr-defined]
    assert dag.dag_id == "mmfs_nightly" and set(dag.task_ids) == {"plan", "run"}
    assert [t.task_id for t in dag.get_task("plan").downstream_list] == ["run"]


def test_task_commands_are_mmfs_plan_and_run_and_a_bad_config_exits_2(tmp_path: Path) -> None:
    example = _example()
    argv = example.mmfs_argv("run", ["/data/in"], "/data/store", "nightly.yaml")  # type: ignore[attr-defined]
    want = ["run", "/data/in", "--store", "/data/store", "--json", "--config", "nightly.yaml", "--quiet"]
    assert argv[1:] == ["-m", "mmfs.cli", *want]
    bad = tmp_path / "bad.yaml"
    bad.write_text("runner: {kind: nope}\n")
    plan = example.mmfs_argv("plan", [str(tmp_path)], str(tmp_path / "store"), str(bad))  # type: ignore[attr-defined]
    done = subprocess.run(plan, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2, done.stderr  # the DAG fails such a task at once, without retries
    assert sys.executable == plan[0]
