"""One place where a CLI run is observed: Prometheus metrics (port, textfile) and OpenLineage events.

`observed_run` wraps `run_pipeline`: it starts what the config and flags ask for, hands back the
function that records the finished run, and on the way out writes the metrics file and, when the
run raised, sends the lineage FAIL event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mmfs.config import PipelineConfig
from mmfs.pipelines.run import RunSummary


@contextmanager
def observed_run(
    cfg: PipelineConfig,
    paths: list[str],
    store: str,
    *,
    metrics_port: int | None = None,
    metrics_file: str | None = None,
    with_metrics: bool = True,
) -> Iterator[Callable[[RunSummary], None]]:
    """Observe one run; the yielded function records its summary (metrics, lineage COMPLETE)."""
    from mmfs.ops.lineage import LineageEmitter
    from mmfs.ops.metrics import RunMetrics, serve_metrics, write_textfile

    port, file = metrics_port or cfg.metrics.port, metrics_file or cfg.metrics.file
    if not with_metrics:  # `mmfs watch` runs many times in one process: lineage only
        port = file = None
    metrics: RunMetrics | None = RunMetrics() if port or file else None
    stop_watching = metrics.watch_runs() if metrics is not None else None
    if metrics is not None and port:
        serve_metrics(metrics, port)
    lineage = LineageEmitter.from_config(cfg.lineage, store)
    run_started = lineage.start(cfg, paths) if lineage is not None else None

    def record(summary: RunSummary) -> None:
        if metrics is not None:
            metrics.run_done(summary, time.time())
        if lineage is not None and run_started is not None:
            lineage.complete(run_started, summary)

    try:
        yield record
    except BaseException as err:
        if lineage is not None and run_started is not None:
            lineage.fail(run_started, err)
        raise
    finally:
        if stop_watching is not None:
            stop_watching()
        if metrics is not None and file:
            write_textfile(metrics, file)
