"""`mmfs watch`: run the pipeline on files as they appear or change, until Ctrl-C or SIGTERM.

A run starts once the watched folders have been quiet for the debounce time and covers only the
files that changed (plus one catch-up run over everything at start, which skips what the store
already holds). A change set is run in chunks of `chunk_files`, each chunk a complete run with its
own commits and `runs` row; a stop request is honoured between chunks, never inside one, so nothing
is left half-written (and a run killed anyway is completed by the next, see `pipelines.run`).
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from mmfs.config import PipelineConfig
from mmfs.errors import ConfigError, MmfsError
from mmfs.pipelines.run import RunSummary, run_pipeline

log = logging.getLogger(__name__)

RunFn = Callable[[list[str], PipelineConfig, str], RunSummary]


@dataclass
class WatchStats:
    """What a watch session did: runs made and items processed, for its closing line."""

    runs: int = 0
    n_ok: int = 0
    n_quarantined: int = 0
    run_ids: list[str] = field(default_factory=list)

    def add(self, summary: RunSummary) -> None:
        """Count one finished run."""
        self.runs += 1
        self.n_ok += summary.n_ok + summary.n_degraded
        self.n_quarantined += summary.n_quarantined
        self.run_ids.append(summary.run_id)


class StopOnSignal:
    """Turns SIGINT and SIGTERM into a stop request (an Event); a second signal interrupts at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt  # asked twice: stop now (the next run completes what this leaves)
        log.info("%s: stopping after the current commit", signal.Signals(signum).name)
        self.event.set()


def changed_files(changes: set[tuple[Any, str]], store: str) -> list[str]:
    """The existing files and new folders of a change set, outside the store, sorted; deletions ignored.

    A folder is kept whole (the run lists it): files written into a folder made a moment earlier
    can beat the watch on that folder and raise no event of their own. Files inside a kept folder
    are dropped, so no file is listed twice.
    """
    store_dir = Path(store).resolve() if "://" not in store else None
    found = set()
    for _, name in changes:
        path = Path(name)
        if not path.exists() or not (path.is_file() or path.is_dir()):
            continue  # deleted, or not a regular file
        resolved = path.resolve()
        if store_dir is not None and (
            resolved.is_relative_to(store_dir) or store_dir.is_relative_to(resolved)
        ):
            continue  # the store's own writes, or a folder holding it, when it lives inside a watched folder
        found.add(path)
    folders = [p for p in found if p.is_dir()]
    kept = [p for p in found if not any(p != f and p.is_relative_to(f) for f in folders)]
    return sorted(str(p) for p in kept)


def chunked(paths: list[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of at most `size` paths."""
    for start in range(0, len(paths), size):
        yield paths[start : start + size]


def _default_run(paths: list[str], cfg: PipelineConfig, store: str) -> RunSummary:
    """One run of a change set, with its OpenLineage events when `lineage` is configured."""
    from mmfs.ops.observe import observed_run

    with observed_run(cfg, paths, store, with_metrics=False) as record:
        summary = run_pipeline(paths, cfg, store, show_progress=False)
        record(summary)
    return summary


def watch(
    paths: list[str],
    cfg: PipelineConfig,
    store: str,
    *,
    stop: threading.Event,
    run: RunFn = _default_run,
    on_run: Callable[[RunSummary], None] | None = None,
) -> WatchStats:
    """Catch up on `paths`, then run on every settled change set until `stop` is set.

    The watcher starts before the catch-up run, on its own thread, so a file written during a run
    is seen by the next one (a file seen twice is skipped by its content hash: no second write).
    """
    stats = WatchStats()
    pending: queue.Queue[list[str]] = queue.Queue()
    watcher = threading.Thread(
        target=_gather, args=(paths, cfg, store, stop, pending), name="mmfs-watch", daemon=True
    )
    watcher.start()

    def run_all(batch: list[str], *, catch_up: bool = False) -> None:
        for chunk in chunked(batch, cfg.watch.chunk_files):
            if stop.is_set():
                log.info("stop requested: %d changed files left for the next start", len(batch))
                return
            try:
                summary = run(chunk, cfg, store)
            except ConfigError as err:  # e.g. every changed file gone again before its run
                if catch_up:
                    raise  # a bad config or path at start is the user's to fix
                log.warning("change set skipped: %s", err.message)
                continue
            stats.add(summary)
            if on_run is not None:
                on_run(summary)

    run_all(list(paths), catch_up=True)  # what arrived while nobody watched; items already stored are skipped
    log.info("watching %s (Ctrl-C or SIGTERM stops)", ", ".join(paths))
    while not stop.is_set():
        try:
            files = pending.get(timeout=0.2)
        except queue.Empty:
            if not watcher.is_alive() and not stop.is_set():
                raise MmfsError("the file watcher stopped unexpectedly (see the log)") from None
            continue
        log.info("%d new or changed files", len(files))
        run_all(files)
    watcher.join(timeout=10)
    return stats


def _gather(
    paths: list[str], cfg: PipelineConfig, store: str, stop: threading.Event, out: queue.Queue[list[str]]
) -> None:
    """The watcher thread: each settled change set's files onto `out`, until `stop` is set."""
    from watchfiles import watch as watch_changes

    options = cfg.watch
    try:
        for changes in watch_changes(
            *paths,
            debounce=options.debounce_ms,
            step=options.step_ms,
            stop_event=stop,
            rust_timeout=500,
            yield_on_timeout=False,
            raise_interrupt=False,
            force_polling=options.force_polling,
            poll_delay_ms=options.poll_delay_ms,
        ):
            files = changed_files(changes, store)
            if files:
                out.put(files)
    except Exception:  # reported by the main loop, which sees this thread end
        log.debug("file watcher failed", exc_info=True)
        raise
