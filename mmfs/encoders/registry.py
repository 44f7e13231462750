"""Encoders by name: a decorator registry that rejects duplicates, and one loaded instance per process.

Built-in encoders are registered lazily (name → module, imported on first use), so that
`import mmfs.encoders` and `names()` import no torch.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mmfs.errors import ConfigError

if TYPE_CHECKING:
    from mmfs.encoders.base import Encoder

E = TypeVar("E", bound="type[Encoder]")

_BUILTIN: dict[str, str] = {
    "text.minilm": "mmfs.encoders.text_minilm",
    "image.efficientnet_lite0": "mmfs.encoders.image_efficientnet",
    "audio.resemblyzer": "mmfs.encoders.audio_resemblyzer",
    "audio.torchcrepe": "mmfs.encoders.audio_torchcrepe",
    "video.r3d_18": "mmfs.encoders.video_r3d",
}
_REGISTRY: dict[str, type[Encoder]] = {}
_CACHE: dict[tuple[str, str, int, tuple[tuple[str, Any], ...]], Encoder] = {}
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


def create(name: str, *, device: str = "auto", batch_size: int = 32, **options: Any) -> Encoder:
    """A new instance, not yet loaded (call `load()` or let the first `embed` load it).

    `options` go to encoders that take them (a video encoder's local `weights` file and `clip_len`).
    """
    return resolve(name)(device=device, batch_size=batch_size, **options)


def get_cached(name: str, device: str = "auto", batch_size: int = 32, **options: Any) -> Encoder:
    """The process-wide loaded instance for (name, resolved device, batch size, options): models load once."""
    from mmfs.encoders.devices import resolve_device

    key = (name, resolve_device(device), batch_size, tuple(sorted(options.items())))
    with _LOCK:
        encoder = _CACHE.get(key)
        if encoder is None:
            encoder = create(name, device=key[1], batch_size=batch_size, **options)
            encoder.load()
            _CACHE[key] = encoder
        return encoder
