"""Read a torch checkpoint (`torch.save` file) into NumPy arrays without importing torch.

The CPU engines that run in NumPy (EfficientNet, resemblyzer's LSTM) would otherwise import torch
(~1.7 s and ~500 MB per process) only to read their weights. Both of torch's formats are read: the
zip archive (`archive/data.pkl` plus one file per storage, torch >= 1.6) and the legacy stream
(magic number, protocol, system info, the pickled object, its storage keys, then each storage's raw
bytes), as `torch/serialization.py` writes them. As with `torch.load(weights_only=True)`, the
unpickler accepts only containers, numbers, strings and tensors: any other global is refused, so a
checkpoint cannot run code. Tensors come back as contiguous arrays (bfloat16 widened to float32).
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",  # widened to float32 when the tensor is built
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class CheckpointError(ValueError):
    """A file that is not a torch checkpoint, or one that holds more than tensors and containers."""


@dataclass(frozen=True)
class _StorageType:
    """A torch storage class named in the pickle (`torch.FloatStorage`): only its dtype matters."""

    name: str


@dataclass(frozen=True)
class _Storage:
    key: str
    kind: _StorageType
    numel: int


@dataclass(frozen=True)
class _PendingTensor:
    """A tensor whose storage bytes may come later in the file (the legacy format stores them last)."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> _PendingTensor:
    return _PendingTensor(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data: _PendingTensor, *_: Any) -> _PendingTensor:
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class _WeightsUnpickler(pickle.Unpickler):
    """Resolves storages through `persistent_load`; every global outside `_ALLOWED` is refused."""

    def __init__(self, file: IO[bytes], storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        found = _ALLOWED.get((module, name))
        if found is None:
            raise CheckpointError(
                f"refusing to unpickle {module}.{name} (weights_only=True: tensors and containers only)"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise CheckpointError(f"refusing a persistent object that is not a storage: {pid!r:.80}")
        kind, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(kind, _StorageType):
            raise CheckpointError(f"unknown storage type {kind!r:.80}")
        storage = self.storages.setdefault(key, _Storage(key, kind, numel))
        return storage


def load_checkpoint(path: str | Path) -> Any:
    """The object `torch.save` wrote to `path`, with every tensor as a NumPy array."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with path.open("rb") as fh:
            return _load_legacy(fh)
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, TypeError, AttributeError) as err:
        raise CheckpointError(f"not a readable torch checkpoint ({type(err).__name__}: {err})") from err


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickled = next((n for n in names if n.endswith("/data.pkl") and n.count("/") == 1), None)
        if pickled is None:
            raise CheckpointError("a zip file without <archive>/data.pkl")
        prefix = pickled[: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in names and archive.read(byteorder).strip() not in (b"little", b""):
            raise CheckpointError("a big-endian checkpoint")
        storages: dict[str, _Storage] = {}
        result = _WeightsUnpickler(io.BytesIO(archive.read(pickled)), storages).load()
        data = {key: _stored_member(archive, f"{prefix}data/{key}") for key in storages}
    return _resolve(result, {key: _as_array(storages[key], raw) for key, raw in data.items()})


def _stored_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A storage's bytes; torch stores them uncompressed, so a compressed member (a zip bomb) is refused."""
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(f"{name} is compressed: torch stores tensors uncompressed")
    return archive.read(info)


def _load_legacy(fh: IO[bytes]) -> Any:
    if _SysInfo(fh).load() != LEGACY_MAGIC:
        raise CheckpointError("no torch magic number")
    if _SysInfo(fh).load() != LEGACY_PROTOCOL:
        raise CheckpointError("an unknown torch checkpoint protocol")
    _SysInfo(fh).load()
    storages: dict[str, _Storage] = {}
    result = _WeightsUnpickler(fh, storages).load()
    keys = _SysInfo(fh).load()
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        storage = storages[str(key)]
        numel = int(np.frombuffer(_read_exact(fh, 8), "<i8")[0])
        itemsize = np.dtype(_STORAGE_DTYPES[storage.kind.name]).itemsize
        arrays[storage.key] = _as_array(storage, _read_exact(fh, numel * itemsize))
    return _resolve(result, arrays)


class _SysInfo(pickle.Unpickler):
    """The legacy stream's plain pickles (magic, protocol, system info, storage keys): no globals."""

    def find_class(self, module: str, name: str) -> Any:
        raise CheckpointError(
            f"refusing to unpickle {module}.{name} (weights_only=True: no code in a checkpoint header)"
        )


def _read_exact(fh: IO[bytes], n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise CheckpointError("the checkpoint ends inside a storage")
    return data


def _as_array(storage: _Storage, raw: bytes) -> np.ndarray:
    """A storage's elements as a flat array of its dtype (bfloat16 as float32)."""
    flat = np.frombuffer(raw, _STORAGE_DTYPES[storage.kind.name])
    if storage.kind.name == "BFloat16Storage":
        flat = (flat.astype(np.uint32) << 16).view(np.float32)
    return flat


def _resolve(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """`obj` with every pending tensor built from its storage's array."""
    if isinstance(obj, _PendingTensor):
        flat = arrays[obj.storage.key]
        if not obj.size:
            if not 0 <= obj.offset < flat.size:
                raise CheckpointError("a scalar tensor outside its storage")
            return np.array(flat[obj.offset])
        # as_strided reads wherever the strides point: a crafted offset or stride must not leave the storage
        if obj.offset < 0 or min(obj.size) < 0 or min(obj.stride, default=0) < 0:
            raise CheckpointError(f"a tensor with a negative offset, size or stride: {obj.size} {obj.stride}")
        if len(obj.size) != len(obj.stride):
            raise CheckpointError(f"a tensor of shape {obj.size} with strides {obj.stride}")
        needed = obj.offset + 1 + sum((n - 1) * s for n, s in zip(obj.size, obj.stride, strict=True))
        if min(obj.size) > 0 and needed > flat.size:
            raise CheckpointError(f"a tensor of shape {obj.size} reaches past its storage")
        if min(obj.size) == 0:
            return np.zeros(obj.size, flat.dtype)
        strides = tuple(s * flat.itemsize for s in obj.stride)
        view = np.lib.stride_tricks.as_strided(flat[obj.offset :], obj.size, strides, writeable=False)
        return np.ascontiguousarray(view)
    if isinstance(obj, dict):
        resolved = {k: _resolve(v, arrays) for k, v in obj.items()}
        return collections.OrderedDict(resolved) if isinstance(obj, collections.OrderedDict) else resolved
    if isinstance(obj, list):
        return [_resolve(v, arrays) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v, arrays) for v in obj)
    return obj
