"""Device placement: CUDA when present (for `auto`), never silently CPU when CUDA was asked for."""

from __future__ import annotations

import re

from mmfs.errors import ConfigError

_CUDA = re.compile(r"cuda(:\d+)?")


def resolve_device(requested: str) -> str:
    """'auto' → 'cuda' if a GPU is visible else 'cpu'; 'cuda[:N]' without that GPU is a ConfigError."""
    if requested == "cpu":
        return "cpu"
    if requested != "auto" and not _CUDA.fullmatch(requested):
        raise ConfigError(f"unknown encoder device '{requested}'; expected 'auto', 'cpu' or 'cuda[:N]'")
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
