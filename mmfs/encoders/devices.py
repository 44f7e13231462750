"""Device placement: CUDA when present (for `auto`), never silently CPU when CUDA was asked for."""

from __future__ import annotations

import os
import re
import sys

from mmfs.errors import ConfigError

_CUDA = re.compile(r"cuda(:\d+)?")
# What a GPU driver leaves on the host: torch sees CUDA only through NVIDIA's kernel driver (ROCm
# builds through AMD's /dev/kfd, WSL through /dev/dxg). Without any of them 'auto' is the CPU.
GPU_DRIVER_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def gpu_driver_present() -> bool:
    """Whether this host shows a GPU driver at all (a stat per path; no torch import)."""
    return any(os.path.exists(path) for path in GPU_DRIVER_PATHS)


def resolve_device(requested: str) -> str:
    """'auto' → 'cuda' if a GPU is visible else 'cpu'; 'cuda[:N]' without that GPU is a ConfigError."""
    if requested == "cpu":
        return "cpu"
    if requested != "auto" and not _CUDA.fullmatch(requested):
        raise ConfigError(f"unknown encoder device '{requested}'; expected 'auto', 'cpu' or 'cuda[:N]'")
    if requested == "auto" and "torch" not in sys.modules and not gpu_driver_present():
        return "cpu"  # no driver, no CUDA: a run whose models need no torch never imports it
    import torch  # only here: 'cpu' must not pay for importing torch

    available = torch.cuda.is_available()
    if requested == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise ConfigError(f"encoders.device is '{requested}' but no CUDA device is visible")
    index = int(requested.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"encoders.device is '{requested}' but only {torch.cuda.device_count()} GPU(s)")
    return requested
