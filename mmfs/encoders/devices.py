"""Device placement: CUDA when present (for `auto`), never silently when it was asked for and absent."""

from __future__ import annotations

from mmfs.errors import ConfigError


def resolve_device(requested: str) -> str:
    """'auto' → 'cuda' if a GPU is visible else 'cpu'; 'cuda' without a GPU is a config error."""
    if requested == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if requested == "auto":
        return "cuda" if available else "cpu"
    if requested.startswith("cuda") and not available:
        raise ConfigError("encoders.device is 'cuda' but no CUDA device is visible")
    return requested
