"""An Airflow DAG that runs mmfs nightly: `mmfs plan` (what is new or stale), then `mmfs run`.

Copy it into your DAGs folder and set the Airflow Variables `mmfs_sources` (space-separated paths,
globs or manifests), `mmfs_store` and, optionally, `mmfs_config`; without them it falls back to the
environment variables MMFS_SOURCES, MMFS_STORE and MMFS_CONFIG. Install with `pip install 'mmfs[airflow]'`.

Exit codes decide the task's fate (DESIGN.md): 0 succeeds (quarantined items included, they are
data, not failures); 1, a failed run, fails the task and Airflow retries it (a re-run completes
exactly what was missing); 2, bad usage or config, fails it at once without retries, since a retry
cannot fix a config file.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

MMFS = [sys.executable, "-m", "mmfs.cli"]


def mmfs_argv(step: str, sources: list[str], store: str, config: str | None) -> list[str]:
    """The `mmfs plan` / `mmfs run` command line of one task (a list: never through a shell)."""
    argv = [*MMFS, step, *sources, "--store", store, "--json"]
    if config:
        argv += ["--config", config]
    return [*argv, "--quiet"] if step == "run" else argv


def _setting(name: str) -> str:
    """An Airflow Variable `mmfs_<name>`, else the environment variable MMFS_<NAME>."""
    from airflow.models import Variable

    default = os.environ.get(f"MMFS_{name.upper()}", "")
    return str(Variable.get(f"mmfs_{name}", default_var=default))


def run_step(step: str) -> str:
    """Run one mmfs step; its --json document becomes the task's XCom, its exit code the outcome."""
    from airflow.exceptions import AirflowException, AirflowFailException

    sources, store = shlex.split(_setting("sources")), _setting("store")
    if not sources or not store:
        raise AirflowFailException(
            "set the mmfs_sources and mmfs_store Variables (or MMFS_SOURCES/MMFS_STORE)"
        )
    done = subprocess.run(
        mmfs_argv(step, sources, store, _setting("config") or None), capture_output=True, text=True
    )
    sys.stderr.write(done.stderr)  # mmfs logs to stderr: it lands in the task log
    if done.returncode == 2:
        raise AirflowFailException(f"mmfs {step}: bad usage or config (exit 2): {done.stderr.strip()[-500:]}")
    if done.returncode != 0:
        raise AirflowException(f"mmfs {step} failed with exit code {done.returncode}")
    return done.stdout


def build_dag() -> Any:
    """The DAG: plan, then run, every night at 02:00; one run at a time (mmfs locks the store anyway)."""
    try:
        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG  # Airflow 3
    except ImportError:  # Airflow 2
        from airflow import DAG  # type: ignore[no-redef]
        from airflow.operators.python import PythonOperator  # type: ignore[no-redef]

    with DAG(
        dag_id="mmfs_nightly",
        schedule="0 2 * * *",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
        tags=["mmfs"],
    ) as dag:
        plan = PythonOperator(task_id="plan", python_callable=run_step, op_args=["plan"])
        run = PythonOperator(task_id="run", python_callable=run_step, op_args=["run"])
        plan >> run
    return dag


try:
    import airflow  # noqa: F401
except ImportError:  # the helpers above stay importable (and tested) without Airflow
    dag = None
else:
    dag = build_dag()
