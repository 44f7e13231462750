"""OpenLineage run events for mmfs runs: START, then COMPLETE or FAIL, to an HTTP endpoint or a file.

Inputs are the sources the run was given (files, folders, globs, manifests, s3 prefixes); outputs are
the store's tables with the versions the run left (`runs.table_versions`) and the rows it wrote.
The OpenLineage run id is a UUID made at START; the mmfs `run_id` (known once the run has begun)
travels in the `mmfs_run` run facet of COMPLETE. Sending never fails a run: an unreachable
endpoint is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attr

from mmfs import __version__
from mmfs.config import LineageConfig, PipelineConfig
from mmfs.pipelines.run import RunSummary

log = logging.getLogger(__name__)
PRODUCER = "https://github.com/mmfs/mmfs"


def _run_facet_base() -> Any:
    from openlineage.client.generated.base import RunFacet

    return RunFacet


@dataclass(frozen=True)
class StartedRun:
    """What START sent and COMPLETE / FAIL repeat: the lineage run id and the input datasets."""

    run_uuid: str
    inputs: list[Any]
    config_hash: str


def dataset_namespace(location: str) -> str:
    """OpenLineage namespace of a path or URI: `file` for local paths, `scheme://bucket` for object stores."""
    if "://" in location:
        scheme, rest = location.split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0]}"
    return "file"


def dataset_name(location: str) -> str:
    """OpenLineage name of a path or URI: the absolute path, or the key under the bucket."""
    if "://" in location:
        rest = location.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return str(Path(location).resolve())


class LineageEmitter:
    """Builds and sends the run events of one store's runs through an OpenLineage client."""

    def __init__(self, clients: list[Any], cfg: LineageConfig, store: str) -> None:
        self.clients, self.cfg = clients, cfg
        self.store_namespace = dataset_namespace(store) if "://" in store else f"file://{dataset_name(store)}"

    @classmethod
    def from_config(cls, cfg: LineageConfig, store: str) -> LineageEmitter | None:
        """An emitter for `lineage.url` and/or `lineage.file`; None when neither is set."""
        if not cfg.url and not cfg.file:
            return None
        from openlineage.client import OpenLineageClient

        transports: list[Any] = []
        if cfg.file:
            from openlineage.client.transport.file import FileConfig, FileTransport

            Path(cfg.file).parent.mkdir(parents=True, exist_ok=True)
            transports.append(FileTransport(FileConfig(log_file_path=cfg.file, append=True)))
        if cfg.url:
            from openlineage.client.transport.http import (
                ApiKeyTokenProvider,
                HttpConfig,
                HttpTransport,
                TokenProvider,
            )

            auth = ApiKeyTokenProvider({"apiKey": cfg.api_key}) if cfg.api_key else TokenProvider({})
            transports.append(HttpTransport(HttpConfig(url=cfg.url, endpoint=cfg.endpoint, auth=auth)))
        return cls([OpenLineageClient(transport=t) for t in transports], cfg, store)

    def start(self, cfg: PipelineConfig, paths: list[str]) -> StartedRun:
        """Send START with the input datasets; returns what the closing event needs."""
        from openlineage.client.event_v2 import InputDataset
        from openlineage.client.uuid import generate_new_uuid

        inputs = [InputDataset(namespace=dataset_namespace(p), name=dataset_name(p)) for p in paths]
        started = StartedRun(str(generate_new_uuid()), inputs, cfg.config_hash())
        self._send("START", started, outputs=[], run_facets={})
        return started

    def complete(self, started: StartedRun, summary: RunSummary) -> None:
        """Send COMPLETE with the tables the run left, at their versions, and its rows written."""
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import dataset_version_dataset, output_statistics_output_dataset

        outputs = [
            OutputDataset(
                namespace=self.store_namespace,
                name=table,
                facets={
                    "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(version))
                },
                outputFacets={
                    "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        rowCount=summary.rows.get(table, 0)
                    )
                },
            )
            for table, version in sorted(summary.table_versions.items())
        ]
        facet = _mmfs_facet(summary.run_id, started.config_hash, summary)
        self._send("COMPLETE", started, outputs=outputs, run_facets={"mmfs_run": facet})

    def fail(self, started: StartedRun, error: BaseException) -> None:
        """Send FAIL with the error's message."""
        from openlineage.client.facet_v2 import error_message_run

        message = f"{type(error).__name__}: {error}"
        facet = error_message_run.ErrorMessageRunFacet(message=message[:2000], programmingLanguage="python")
        self._send("FAIL", started, outputs=[], run_facets={"errorMessage": facet})

    def _send(
        self, state: str, started: StartedRun, *, outputs: list[Any], run_facets: dict[str, Any]
    ) -> None:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

        event = RunEvent(
            eventType=getattr(RunState, state),
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=started.run_uuid, facets=run_facets),
            job=Job(namespace=self.cfg.namespace, name=self.cfg.job_name),
            producer=PRODUCER,
            inputs=started.inputs,
            outputs=outputs,
        )
        for client in self.clients:
            try:
                client.emit(event)
            except Exception as err:  # lineage is a report about the run, never a reason to fail it
                log.warning("OpenLineage %s event not sent: %s", state, err)


def _mmfs_facet(run_id: str, config_hash: str, summary: RunSummary) -> Any:
    """The `mmfs_run` run facet: the mmfs run id (the `runs` row's key) and its outcome counts."""
    base = _run_facet_base()

    @attr.define
    class MmfsRunFacet(base):  # type: ignore[valid-type,misc]  # camelCase, as OpenLineage facets are
        runId: str
        configHash: str
        mmfsVersion: str
        nOk: int
        nQuarantined: int
        nSkipped: int

    return MmfsRunFacet(
        runId=run_id,
        configHash=config_hash,
        mmfsVersion=__version__,
        nOk=summary.n_ok,
        nQuarantined=summary.n_quarantined,
        nSkipped=summary.n_skipped,
    )
