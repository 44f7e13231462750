"""The thread budget of a local run: the CPUs split between decode workers and torch's intra-op threads.

Decoding and embedding overlap in the streaming executor, so they share the cores instead of taking
turns: more threads than cores makes torch's OpenMP threads wait on each other (a parallel region
is as slow as its descheduled straggler). On a CPU run the encoders get most cores (they do most of
the work) and the decoders the rest, at least one; on a GPU the decoders take all but one core. A
value the user set (`runner.workers`, `encoders.threads`) is kept, and the other side gets what it
leaves. The run summary reports the split (`RunSummary.threads`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mmfs.config import PipelineConfig
from mmfs.encoders.execution import available_cpus


@dataclass(frozen=True)
class ThreadBudget:
    """Decode workers and torch intra-op threads of a run, out of `cores`."""

    decode: int
    torch: int
    cores: int

    def as_dict(self) -> dict[str, int]:
        """The split as the run summary shows it: `model` is the encoders' intra-op threads (torch's, or
        BLAS's for an encoder that runs in NumPy); `torch` is the same number, the key's older name."""
        return {"decode": self.decode, "model": self.torch, "torch": self.torch, "cores": self.cores}


def thread_budget(cfg: PipelineConfig, cores: int | None = None) -> ThreadBudget:
    """The split for this config on `cores` CPUs (None: the CPUs this process may use)."""
    n = max(1, cores if cores is not None else available_cpus())
    workers, threads = cfg.runner.workers, cfg.encoders.threads
    if workers is not None and threads is not None:
        return ThreadBudget(workers, threads, n)
    if workers is not None:
        return ThreadBudget(workers, max(1, n - workers), n)
    if threads is not None:
        return ThreadBudget(max(1, n - threads), threads, n)
    if _gpu_likely(cfg.encoders.device):
        torch = 1 if n < 8 else 2
        return ThreadBudget(max(1, n - torch), torch, n)
    decode = max(1, n // 3)  # 2 cores: 1 + 1; 4: 1 + 3; 8: 2 + 6; 16: 5 + 11
    return ThreadBudget(decode, max(1, n - decode), n)


def _gpu_likely(device: str) -> bool:
    """Whether the encoders will run on a GPU, without importing torch (the split only, not placement)."""
    if device.startswith("cuda"):
        return True
    if device == "cpu":
        return False
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return os.path.exists("/dev/nvidia0") and visible not in ("", "-1")
