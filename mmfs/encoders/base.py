"""The encoder contract (Beam RunInference's split): load once per process, embed batches.

Every encoder returns L2-normalised float32 rows, checks them for NaN/Inf and zero norm before anyone
stores them, and describes itself (provenance, resources) so the store can record what made each
vector. Weights are hash-pinned: a file whose sha256 differs from the pin is refused before loading.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from mmfs.encoders.devices import resolve_device
from mmfs.encoders.digests import sha256_files
from mmfs.encoders.execution import (
    apply_blas_threads,
    apply_cpu_threads,
    autocast,
    chunks,
    laned,
    lendable_cpus,
    prefetched,
    spare_cpus,
)
from mmfs.errors import ConfigError, EncoderError, ErrorCode

T = TypeVar("T")
# seconds each encoder's last load took in this process, by name (read by run metrics)
LOAD_SECONDS: dict[str, float] = {}


@dataclass(frozen=True)
class Resources:
    """What an encoder needs to run: where, whether on a GPU, and roughly how much memory."""

    device: str
    gpu: bool
    approx_memory_mb: int
    batch_size: int = 0  # inputs per forward pass
    cpu_threads: int = 0  # torch intra-op threads on the CPU (0: not set yet, or on a GPU)


class Encoder(ABC):
    """A pretrained model behind a registry name: `load()` once, then `embed(batch)` many times."""

    name: str = ""  # set by @register
    modality: str = ""
    dim: int = 0
    model_name: str = ""
    package: str = ""  # the installed distribution that ships the weights
    pinned_sha256: str | None = None  # expected sha256 of weight_files(); None = not pinned
    approx_memory_mb: int = 200
    # inputs per forward pass when the config leaves it to the encoder: what fills each device well
    batch_size_hint: ClassVar[dict[str, int]] = {"cpu": 32, "cuda": 256}
    prefetch_depth: int = 2  # chunks prepared ahead of the model (bounded memory)
    cuda_autocast: bool = True  # bf16/fp16 autocast on CUDA (off for models that gain nothing or lose)
    # CPU: whole chunks may run side by side on CPUs the decoders lend (execution.lending_cpus); only for
    # models whose forward is safe to call from two threads at once and measured faster so
    cpu_lanes: ClassVar[bool] = False

    def __init__(
        self,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        threads: int | None = None,
        options: dict[str, str] | None = None,
        cpu_engine: str = "numpy",
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"encoder batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ConfigError(f"encoder threads must be >= 1, got {threads}")
        self.device = resolve_device(device)
        self.batch_size = batch_size or self.default_batch_size(self.device)
        self.threads = threads
        self.options = dict(options or {})
        # on a CPU, encoders with a NumPy engine run it unless this says "torch" (encoders.cpu_engine)
        self.cpu_engine = cpu_engine
        self._loaded = False
        self._load_lock = threading.Lock()

    @classmethod
    def default_batch_size(cls, device: str) -> int:
        """The batch-size hint for a device ('cuda:1' counts as 'cuda')."""
        return cls.batch_size_hint["cuda" if device.startswith("cuda") else "cpu"]

    # -- what each encoder provides ---------------------------------------------------------------

    @abstractmethod
    def weight_files(self) -> list[Path]:
        """The files holding the weights (pinned and hashed for provenance)."""

    @abstractmethod
    def _load(self) -> None:
        """Build the model from the installed weights (weights_only / safetensors)."""

    @abstractmethod
    def _embed_batch(self, batch: Any) -> np.ndarray:
        """Raw (n, dim) vectors of one `_prepare`d chunk of at most batch_size valid inputs.

        Called under inference_mode, and under autocast on CUDA (return float32 or float16 arrays).
        """

    def _prepare(self, chunk: Sequence[Any]) -> Any:
        """CPU preprocessing of one chunk, run ahead of the model in the prefetch thread (default: none)."""
        return chunk

    def preprocessing(self) -> dict[str, Any]:
        """Parameters of the input preprocessing (recorded as provenance)."""
        return {}

    def input_problem(self, item: Any) -> str | None:
        """Why `item` is not a valid input, or None when it is."""
        return None

    def space(self) -> str:
        """The vector space this encoder embeds into: equal for two encoders whose vectors compare
        (the two towers of one CLIP checkpoint); otherwise its own name."""
        return self.name

    # -- the contract -----------------------------------------------------------------------------

    @property
    def uses_torch(self) -> bool:
        """Whether this encoder runs in torch here (its load and batches then set torch's threads and
        inference mode); an encoder with a torch-free engine says False and never imports torch."""
        return True

    def describe(self) -> None:
        """Fill what metadata needs (width, model name) without loading weights.

        Most encoders know their width as a class constant; one whose width depends on its checkpoint
        (CLIP) reads it from the checkpoint's config here. Planning and committing need only this.
        """
        if self.dim <= 0:
            raise EncoderError(f"{self.name}: its width is known only once loaded; override describe()")

    def load(self) -> None:
        """Verify the weights' pin and load the model; idempotent and thread-safe."""
        with self._load_lock:
            if self._loaded:
                return
            started = time.perf_counter()
            self._verify_pin()
            if not self.uses_torch:  # its own engine takes the thread budget (BLAS threads)
                self.threads = apply_blas_threads(self.threads)
            elif not self.device.startswith("cuda"):
                self.threads = apply_cpu_threads(self.threads)
            self._load()
            self._loaded = True
            LOAD_SECONDS[self.name] = time.perf_counter() - started

    def embed(self, batch: Sequence[Any]) -> np.ndarray:
        """(n, dim) float32 L2-normalised rows; a NaN/Inf or zero row raises NONFINITE_EMBEDDING."""
        self.check_inputs(batch)
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = self.run_batches(batch, self._embed_batch)
        return self.finish(np.concatenate([np.asarray(p, dtype=np.float32) for p in parts]))

    def provenance(self) -> dict[str, str]:
        """What made these vectors: stored in the schema metadata of every column they fill."""
        from mmfs import __version__

        return {
            "name": self.name,
            "model": self.model_name,
            "package": self._package_version(),
            "dim": str(self.dim),
            "weights_sha256": self.weights_sha256(),
            "preprocessing": json.dumps(self.preprocessing(), sort_keys=True),
            "code_version": __version__,
            **({"options": json.dumps(self.options, sort_keys=True)} if self.options else {}),
        }

    def resources(self) -> Resources:
        """Device, memory, batch size and CPU threads this encoder uses."""
        return Resources(
            self.device,
            self.device.startswith("cuda"),
            self.approx_memory_mb,
            self.batch_size,
            self.threads if self.threads is not None else 0,
        )

    def weights_sha256(self) -> str:
        """sha256 of the weight files, computed once per process."""
        try:
            return sha256_files(tuple(self.weight_files()))
        except OSError as err:
            raise EncoderError(
                f"{self.name}: cannot read weights ({err})", code=ErrorCode.ENCODER_UNAVAILABLE
            ) from err

    # -- helpers for subclasses -------------------------------------------------------------------

    def check_inputs(self, batch: Sequence[Any]) -> None:
        """Raise ENCODER_FAILED naming the first input that is not valid for this encoder."""
        for index, item in enumerate(batch):
            problem = self.input_problem(item)
            if problem is not None:
                raise EncoderError(f"{self.name}: input {index} of {len(batch)}: {problem}")

    def run_batches(self, batch: Sequence[Any], fn: Callable[[Any], T]) -> list[T]:
        """`fn` over the `_prepare`d batch_size chunks, in order, torch errors as EncoderError.

        Chunk i+1 is prepared in a background thread while `fn` runs on chunk i (bounded queue);
        `fn` runs under torch.inference_mode, and under autocast on CUDA. On a CPU, an encoder with
        `cpu_lanes` runs more chunks side by side while the runner lends it idle CPUs (`laned`).
        """
        self.load()
        out: list[T] = []
        parts = chunks(batch, self.batch_size)
        depth = self.prefetch_depth if type(self)._prepare is not Encoder._prepare else 0
        per_lane = max(1, self.threads or 1)
        lanes = 1 + lendable_cpus() // per_lane if self.cpu_lanes and self.device == "cpu" else 1
        if not self.uses_torch:  # NumPy engines: BLAS and NumPy's loops release the GIL, so lanes work
            steps: Iterable[tuple[int, Sequence[Any], Any]]
            if lanes > 1:
                work = functools.partial(_prepared_call, self._prepare, fn)
                steps = laned(parts, work, lambda: spare_cpus() // per_lane, lanes)
            else:
                steps = prefetched(parts, self._prepare, depth)
            for start, chunk, done in steps:
                try:
                    if isinstance(done, BaseException):
                        raise done
                    out.append(done if lanes > 1 else fn(done))
                except (ValueError, FloatingPointError, MemoryError) as err:
                    where = f"inputs {start}..{start + len(chunk) - 1} of {len(batch)}"
                    raise EncoderError(
                        f"{self.name}: failed on {where}: {err}", code=ErrorCode.ENCODER_FAILED
                    ) from err
            return out
        import torch

        with torch.inference_mode(), autocast(self.device, self.cuda_autocast):
            if lanes > 1:  # each lane prepares and runs its own chunks (inference mode is per thread)
                work = functools.partial(_prepared_call, self._prepare, fn)
                for start, chunk, done in laned(parts, work, lambda: spare_cpus() // per_lane, lanes):
                    with self._chunk_errors(start, len(chunk), len(batch)):
                        if isinstance(done, BaseException):
                            raise done
                        out.append(done)
                return out
            for start, chunk, prepared in prefetched(parts, self._prepare, depth):
                with self._chunk_errors(start, len(chunk), len(batch)):
                    if isinstance(prepared, BaseException):
                        raise prepared
                    out.append(fn(prepared))
        return out

    @contextlib.contextmanager
    def _chunk_errors(self, start: int, n: int, total: int) -> Iterator[None]:
        """torch's errors (CUDA out-of-memory included) of inputs start..start+n-1 as EncoderError."""
        import torch

        try:
            yield
        except RuntimeError as err:
            raise EncoderError(
                f"{self.name}: failed on inputs {start}..{start + n - 1} of {total}: {err}",
                code=ErrorCode.ENCODER_OUT_OF_MEMORY
                if isinstance(err, torch.cuda.OutOfMemoryError)
                else ErrorCode.ENCODER_FAILED,
            ) from err

    def finish(self, vectors: np.ndarray) -> np.ndarray:
        """Check every row is finite with a non-zero norm, then L2-normalise to float32."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise EncoderError(f"{self.name}: produced shape {vectors.shape}, expected (n, {self.dim})")
        finite = np.isfinite(vectors).all(axis=1)
        norms = np.linalg.norm(np.where(finite[:, None], vectors, 0.0), axis=1)
        bad = np.flatnonzero(~finite | ~(norms > 0))
        if bad.size:
            row = int(bad[0])
            what = "non-finite" if not finite[row] else "zero-norm"
            raise EncoderError(
                f"{self.name}: {what} embedding for input {row} of {len(vectors)} ({bad.size} bad rows)",
                code=ErrorCode.NONFINITE_EMBEDDING,
            )
        return (vectors / norms[:, None]).astype(np.float32)

    def _verify_pin(self) -> None:
        """Refuse weight files whose sha256 is not the pinned one (tampered or a different release)."""
        if self.pinned_sha256 is None:
            return
        found = self.weights_sha256()
        if found != self.pinned_sha256:
            raise EncoderError(
                f"{self.name}: weights sha256 {found} != pinned {self.pinned_sha256}; refusing to load",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            )

    def _package_version(self) -> str:
        """`package==version` of the distribution shipping the weights ('' when not declared)."""
        if not self.package:
            return ""
        try:
            return f"{self.package}=={importlib.metadata.version(self.package)}"
        except importlib.metadata.PackageNotFoundError:
            return f"{self.package}==?"


def _prepared_call(
    prepare: Callable[[Sequence[Any]], Any], fn: Callable[[Any], T], chunk: Sequence[Any]
) -> T:
    """fn(prepare(chunk)): one lane's whole work on a chunk."""
    return fn(prepare(chunk))
