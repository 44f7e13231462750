"""Encoders by name: a decorator registry that rejects duplicates, and one loaded instance per process.

Built-in encoders are registered lazily (name → module, imported on first use), so that
`import mmfs.encoders` and `names()` import no torch.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from mmfs.errors import ConfigError

if TYPE_CHECKING:
    from mmfs.encoders.base import Encoder

E = TypeVar("E", bound="type[Encoder]")

_BUILTIN: dict[str, str] = {
    "text.minilm": "mmfs.encoders.text_minilm",
    "image.efficientnet_lite0": "mmfs.encoders.image_efficientnet",
    "image.efficientnet_lite1": "mmfs.encoders.image_efficientnet",
    "image.efficientnet_lite2": "mmfs.encoders.image_efficientnet",
    "image.clip": "mmfs.encoders.clip",
    "text.clip": "mmfs.encoders.clip",
    "audio.resemblyzer": "mmfs.encoders.audio_resemblyzer",
    "audio.torchcrepe": "mmfs.encoders.audio_torchcrepe",
    "video.r3d_18": "mmfs.encoders.video_r3d",
}
_REGISTRY: dict[str, type[Encoder]] = {}
_CACHE: dict[tuple[str, str, int | None, int | None, str, str], Encoder] = {}
_LOCK = threading.RLock()


def register(name: str) -> Callable[[E], E]:
    """Class decorator: make an Encoder available as `name`; a second class for a name is refused."""

    def wrap(cls: E) -> E:
        with _LOCK:
            existing = _REGISTRY.get(name)
            if existing is not None and existing is not cls:
                raise ValueError(
                    f"encoder name '{name}' is already registered by {existing.__module__}."
                    f"{existing.__qualname__}"
                )
            cls.name = name
            _REGISTRY[name] = cls
        return cls

    return wrap


def import_plugins(modules: list[str]) -> None:
    """Import the modules that register encoders (`encoders.plugins`); each is imported once.

    Config validation imports them too, but a config that crossed a process boundary (a Ray task,
    a Beam worker) was unpickled, not validated: the worker's Enricher calls this before it resolves
    any name.
    """
    for module in modules:
        importlib.import_module(module)


def names() -> list[str]:
    """Every known encoder name, built-in and registered, sorted."""
    return sorted(set(_REGISTRY) | set(_BUILTIN))


def resolve(name: str) -> type[Encoder]:
    """The class registered as `name`; a ConfigError listing the known names otherwise."""
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])  # its @register fills _REGISTRY
    if name not in _REGISTRY:
        raise ConfigError(f"unknown encoder '{name}'; known encoders: {', '.join(names())}")
    return _REGISTRY[name]


def create(
    name: str,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    threads: int | None = None,
    options: Mapping[str, str] | None = None,
    cpu_engine: str = "numpy",
) -> Encoder:
    """A new instance, not yet loaded (call `load()` or let the first `embed` load it).

    batch_size None: the encoder's hint for the device; threads None: the CPUs this process may use;
    options: encoder-specific settings (a CLIP checkpoint's directory), recorded in provenance;
    cpu_engine: "numpy" or "torch" for encoders that have both on a CPU (not in provenance: equal output).
    """
    return resolve(name)(
        device=device,
        batch_size=batch_size,
        threads=threads,
        options=dict(options or {}),
        cpu_engine=cpu_engine,
    )


def get_cached(
    name: str,
    device: str = "auto",
    batch_size: int | None = None,
    *,
    threads: int | None = None,
    options: Mapping[str, str] | None = None,
    cpu_engine: str = "numpy",
) -> Encoder:
    """The process-wide loaded instance for (name, device, batch size, threads, options, CPU engine):
    loads once."""
    from mmfs.encoders.devices import resolve_device

    opts = dict(options or {})
    key = (name, resolve_device(device), batch_size, threads, json.dumps(opts, sort_keys=True), cpu_engine)
    with _LOCK:
        encoder = _CACHE.get(key)
        if encoder is None:
            encoder = create(
                name,
                device=key[1],
                batch_size=batch_size,
                threads=threads,
                options=opts,
                cpu_engine=cpu_engine,
            )
            encoder.load()
            _CACHE[key] = encoder
        return encoder


_DESCRIBED: dict[tuple[str, str], Encoder] = {}


def describe(name: str, options: Mapping[str, str] | None = None) -> Encoder:
    """An unloaded instance with its width and provenance readable (`Encoder.describe`), cached.

    What the driver needs to lay out schemas and plan: it loads no weights, so a run whose work is
    done, and a Ray or Beam driver, never pay for a model.
    """
    opts = dict(options or {})
    key = (name, json.dumps(opts, sort_keys=True))
    with _LOCK:
        found = _DESCRIBED.get(key)
        if found is None:
            found = create(name, device="cpu", options=opts)
            found.describe()
            _DESCRIBED[key] = found
        return found


def loaded_count() -> int:
    """How many models this process has loaded (0 on a driver that only planned and committed)."""
    with _LOCK:
        return len(_CACHE)


def identity(name: str, options: Mapping[str, str] | None = None) -> str:
    """What decides an encoder's vectors, known without loading it: name, pinned weights, options.

    Part of every table's feature_version: a release that pins other weights, or another CLIP
    checkpoint, makes exactly the tables that encoder fills stale.
    """
    pin = resolve(name).pinned_sha256 or "unpinned"
    extra = f"|{json.dumps(dict(options), sort_keys=True)}" if options else ""
    return f"{name}@{pin}{extra}"


def from_provenance(info: Mapping[str, str], default: str) -> Encoder:
    """The loaded encoder a stored column's provenance names (with its options), to embed queries alike."""
    options = json.loads(info.get("options", "{}"))
    return get_cached(str(info.get("name", default)), options=options)
