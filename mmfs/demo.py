"""The built-in sample data: small real media shipped inside the package (see data/SAMPLES.md)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SAMPLE_DIR = Path(str(files("mmfs") / "data" / "sample"))


def sample_paths() -> list[str]:
    """The sample folder, as `mmfs run` takes it (captions pair with their media as sidecars)."""
    return [str(SAMPLE_DIR)]
