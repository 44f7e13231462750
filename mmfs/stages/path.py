"""The data path as every runner maps it: one decode per item, the batch stages in a worker that
holds their models, one committer. Derived from the stage objects themselves (their resources), so
the local executor, Ray and Beam place the same stages with the same needs and cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmfs.config import PipelineConfig
from mmfs.stages.base import Resources
from mmfs.stages.encode import Enricher

DECODE = "decode"  # the per-item stage (stages/decode.py), CPU only, one item at a time


@dataclass(frozen=True)
class DataPath:
    """Where each part of a run goes: what a decode worker and an encode worker hold, in what order the
    batch stages run there, and how many items a batch has."""

    decode: Resources
    encode: Resources
    batch_stages: tuple[str, ...]  # stage names, in order (the align stage last)
    batch_size: int

    def describe(self) -> dict[str, object]:
        """JSON-able form, for the run report."""
        return {
            "decode": {"cpus": self.decode.cpus},
            "encode": {
                "cpus": self.encode.cpus,
                "gpus": self.encode.gpus,
                "models": list(self.encode.models),
            },
            "batch_stages": [DECODE, *self.batch_stages, "rows", "commit"],
            "batch_size": self.batch_size,
        }


def data_path(cfg: PipelineConfig, enricher: Enricher | None = None, gpus: float = 0.0) -> DataPath:
    """The data path of a config (`enricher`: the run's own, when it has one; nothing is loaded)."""
    stages = (enricher or Enricher(cfg)).stages
    models = tuple(dict.fromkeys(m for s in stages for m in s.resources.models if m))
    encode = Resources(cpus=max(s.resources.cpus for s in stages), gpus=gpus, models=models)
    names = (*dict.fromkeys(s.name for s in stages), "align")
    return DataPath(Resources(cpus=1.0), encode, names, cfg.runner.batch_media)
