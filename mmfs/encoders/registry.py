"""Encoders by name: a decorator registry that rejects duplicates, and one loaded instance per process.

Built-in encoders are registered lazily (name → module), so `import mmfs.encoders` imports no torch.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from mmfs.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mmfs.encoders.base import Encoder

_REGISTRY: dict[str, type[Encoder]] = {}
_BUILTIN: dict[str, str] = {
    "text.minilm": "mmfs.encoders.text_minilm",
    "image.efficientnet_lite0": "mmfs.encoders.image_efficientnet",
    "audio.resemblyzer": "mmfs.encoders.audio_resemblyzer",
}
_CACHE: dict[tuple[str, str, int], Encoder] = {}
_LOCK = threading.Lock()


def register(name: str) -> Callable[[type[Encoder]], type[Encoder]]:
    """Class decorator: make an Encoder available by `name`; a second class for a name is refused."""

    def wrap(cls: type[Encoder]) -> type[Encoder]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"encoder name '{name}' is already registered by {existing.__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def names() -> list[str]:
    """Every known encoder name (built-in and registered)."""
    return sorted(set(_REGISTRY) | set(_BUILTIN))


def resolve(name: str) -> type[Encoder]:
    """The class registered under `name`; ConfigError listing the known names otherwise."""
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        raise ConfigError(f"unknown encoder '{name}'; known: {', '.join(names())}")
    return _REGISTRY[name]


def create(name: str, *, device: str = "auto", batch_size: int = 32) -> Encoder:
    """A new, not yet loaded, instance."""
    return resolve(name)(device=device, batch_size=batch_size)


def get_cached(name: str, *, device: str = "auto", batch_size: int = 32) -> Encoder:
    """The process-wide loaded instance for (name, device, batch size): models load once."""
    key = (name, device, batch_size)
    with _LOCK:
        if key not in _CACHE:
            encoder = create(name, device=device, batch_size=batch_size)
            encoder.load()
            _CACHE[key] = encoder
        return _CACHE[key]
