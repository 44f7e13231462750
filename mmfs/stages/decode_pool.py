"""Decode items in child processes under a time budget: a hung or crashing decoder costs one item.

A thread cannot be stopped, and a decoder stuck inside FFmpeg or a segfault in a native library
takes the whole run down. So each item's CPU stages (`extract`) run in a worker process. The budget
is `limits.decode_timeout_s`, extended by `decode_timeout_per_media_s` per second of media once the
worker reports the probed duration. A worker that runs past it is killed (SIGKILL) and replaced, and
the item becomes a `quarantine` row with code TIMEOUT; a worker that dies is replaced and its item
quarantined as a decoder crash. Workers are fresh interpreters (`python -m mmfs.stages.decode_pool`,
talking over a socket pair): nothing is forked from a process holding torch or lance state, and the
caller's `__main__` is never re-imported. They die with their parent (PR_SET_PDEATHSIG), so a killed
run leaves no orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection

from mmfs.config import PipelineConfig
from mmfs.errors import DecoderCrashed, MmfsError, TransformTimeout
from mmfs.stages.items import Extracted, PendingItem, StageFailure

# The decoders' modules by kind of item (stages/decode.py imports each where that kind is decoded)
FRAME_DECODER = "mmfs.transforms.video.frames"  # decord, PyAV
FLOW_DECODER = "mmfs.transforms.video.flow"  # OpenCV, numba
# librosa and what its first call loads lazily (numba), scipy.signal / ndimage (denoise, SNR, deltas)
AUDIO_DECODERS = ("mmfs.transforms.audio.windows", "librosa.feature", "scipy.signal", "scipy.ndimage")
ALL_DECODERS = (FRAME_DECODER, FLOW_DECODER, *AUDIO_DECODERS)

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent exits (no orphaned decoders)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _worker_main(conn: Connection, preload: Sequence[str] = ()) -> None:
    """Child process: read the config, then extract each item sent, reporting the probed duration first.

    `preload`: the decoders' modules imported at start (stages/decode.py imports them where an item
    of their kind is decoded). The worker says "ready" once they are in: its start-up is not counted
    in its first item's time budget."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from mmfs.stages.decode import extract  # the decoders: in the worker, not in the run's process

    for name in preload:
        importlib.import_module(name)

    try:
        cfg = PipelineConfig.model_validate_json(conn.recv())
        conn.send(("ready", None))  # imports done: an item's budget starts from here, not from spawn
    except (EOFError, OSError):
        return
    while True:
        try:
            pending = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe or died
            return
        try:
            ex = extract(pending, cfg, on_probe=lambda duration: conn.send(("probed", duration)))
        except Exception:  # a bug, not bad media: the parent stops the run, as in-process it would
            conn.send(("bug", traceback.format_exc()))
            continue
        conn.send(("done", ex))


# Decode workers run side by side, one item each: one BLAS/OpenMP thread apiece. Pools of spinning
# BLAS threads in every worker, beside the encoders' own, oversubscribe a small machine so badly that
# a one-second log-mel took minutes (seen on 2 cores). A value the user set is kept.
ONE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


# A fresh worker imports PyAV, decord, OpenCV and NumPy before it can take an item; on a loaded machine
# that took longer than a tight decode budget, which then quarantined good items. The budget counts
# from the worker's "ready"; a worker that cannot even start within this long counts as crashed.
STARTUP_LIMIT_S = 180.0


class DecodeWorkerBug(RuntimeError):
    """A transform raised something other than an MmfsError in a decode worker: a bug; the run stops."""


class DecodePoolClosed(RuntimeError):
    """`extract` was called on a closed pool (a decode thread outliving a run that stopped)."""


class _Worker:
    """One child interpreter and the parent's end of its socket."""

    def __init__(self, cfg_json: str, preload: Sequence[str] = ALL_DECODERS) -> None:
        mine, theirs = socket.socketpair()
        fd = theirs.fileno()
        cmd = [sys.executable, "-m", "mmfs.stages.decode_pool", str(fd), *preload]
        env = {**os.environ, **{k: os.environ.get(k, "1") for k in ONE_THREAD_ENV}}
        self.process = subprocess.Popen(cmd, pass_fds=[fd], stdin=subprocess.DEVNULL, env=env)
        theirs.close()
        self.conn = Connection(mine.detach())
        self.conn.send(cfg_json)
        self.ready = False  # set once the interpreter has imported the decoders and read the config

    def await_ready(self, limit_s: float = STARTUP_LIMIT_S) -> bool:
        """Wait for the worker's start-up (imports) to finish; False if it died or took over `limit_s`."""
        if not self.ready:
            with contextlib.suppress(EOFError, OSError):
                if self.conn.poll(limit_s):
                    self.ready = self.conn.recv() == ("ready", None)
        return self.ready

    def exit_code(self) -> int | None:
        """The worker's exit status once it has ended (negative: killed by that signal)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(timeout=5)
        return None

    def kill(self) -> None:
        """Stop the process at once and reap it."""
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.conn.close()


class DecodePool:
    """`size` worker processes; `extract(p)` is thread-safe and returns whatever happened as data."""

    def __init__(self, cfg: PipelineConfig, size: int, preload: Sequence[str] = ALL_DECODERS) -> None:
        self.cfg, self._preload = cfg, tuple(preload)
        self._cfg_json = cfg.model_dump_json()
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(size):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        worker = _Worker(self._cfg_json, self._preload)
        with self._lock:
            closed = self._closed
            if not closed:
                self._all.append(worker)
        if closed:  # closed while it started: it must not outlive the pool
            worker.kill()
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)

    def extract(self, pending: PendingItem) -> Extracted:
        """The item's CPU stages in a worker, within its time budget."""
        worker = self._take()
        try:
            result = self._run(worker, pending)
        except BaseException:
            self._replace(worker)
            raise
        if isinstance(result, Extracted):
            self._idle.put(worker)
            return result
        self._replace(worker)
        return Extracted(pending, failures=(StageFailure("decode", result),))

    def _take(self) -> _Worker:
        """An idle worker; a closed pool (the run is stopping) raises instead of waiting for ever."""
        while True:
            if self._closed:
                raise DecodePoolClosed("the decode pool was closed: the run is stopping")
            with contextlib.suppress(queue.Empty):
                return self._idle.get(timeout=0.1)

    def _replace(self, worker: _Worker) -> None:
        """Kill a worker and start its replacement, unless the pool is closed meanwhile."""
        self._retire(worker)
        if not self._closed:
            self._idle.put(self._start())

    def _run(self, worker: _Worker, pending: PendingItem) -> Extracted | MmfsError:
        limits = self.cfg.limits
        name = pending.item.path.name
        if not worker.await_ready():
            code = worker.exit_code()
            log.warning("decoder process for %s did not start (exit code %s)", name, code)
            return DecoderCrashed(f"{name}: the decoder process did not start (exit code {code})")
        start = time.monotonic()
        budget = limits.decode_timeout_s
        worker.conn.send(pending)
        while True:
            remaining = start + budget - time.monotonic()
            try:
                ready = remaining > 0 and worker.conn.poll(remaining)
                message = worker.conn.recv() if ready else None
            except (EOFError, OSError):
                code = worker.exit_code()
                log.warning("decoder process died on %s (exit code %s)", name, code)
                return DecoderCrashed(
                    f"{name}: the decoder process died (exit code {code}); the file crashes its decoder"
                )
            if message is None:
                log.warning("decoding %s ran past %.0f s: killed", name, budget)
                return TransformTimeout(
                    f"{name}: decoding ran past its budget of {budget:.0f} s and was killed"
                )
            kind, payload = message
            if kind == "probed":
                budget = limits.decode_timeout_s + limits.decode_timeout_per_media_s * float(payload or 0.0)
                continue
            if kind == "bug":
                log.error("decode worker traceback for %s:\n%s", name, payload)
                last = str(payload).strip().splitlines()[-1]
                raise DecodeWorkerBug(f"decoding {name} raised an unexpected error in its worker: {last}")
            return payload  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop every worker (idle ones get EOF and exit; any still running is killed)."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.conn.close()  # an idle worker reads EOF and exits (all told first: they exit together)
        for worker in workers:
            if worker.exit_code() is None:
                worker.kill()

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SHARED: dict[tuple[str, int], DecodePool] = {}  # Ray's and Beam's workers: every decoder preloaded
_SHARED_LOCK = threading.Lock()


def shared_pool(cfg: PipelineConfig, size: int = 1) -> DecodePool:
    """A pool kept for the life of this process (Ray and Beam workers reuse it across tasks)."""
    key = (cfg.model_dump_json(), size)
    with _SHARED_LOCK:
        pool = _SHARED.get(key)
        if pool is None:
            pool = _SHARED[key] = DecodePool(cfg, size)
        return pool


def extract_item(pending: PendingItem, cfg: PipelineConfig) -> Extracted:
    """`extract` under the configured isolation: in a shared worker process, or in this thread."""
    if cfg.runner.isolate_decode:
        return shared_pool(cfg).extract(pending)
    from mmfs.stages.decode import extract

    return extract(pending, cfg)


if __name__ == "__main__":  # a decode worker: python -m mmfs.stages.decode_pool FD
    _worker_main(Connection(int(sys.argv[1])), sys.argv[2:])
    # its results went out on the socket; skip the interpreter's teardown of PyAV, OpenCV and numba
    # (a few tenths of a second that the run's process would wait for in close())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
