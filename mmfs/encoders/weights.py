"""Read a checkpoint's tensors without ever running code from it: safetensors, or weights_only pickles.

A `.safetensors` file is a JSON header plus raw buffers, so reading it cannot execute anything. Any
other file is read with `torch.load(weights_only=True)`, whose unpickler admits only tensors and plain
containers: a crafted checkpoint whose `__reduce__` would call a function is refused, and the call
never happens. Both refusals are EncoderError(ENCODER_UNAVAILABLE) naming the file.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mmfs.errors import EncoderError, ErrorCode

T = TypeVar("T")

SAFETENSORS_SUFFIX = ".safetensors"


def load_state_dict(path: str | Path, *, owner: str = "weights") -> dict[str, Any]:
    """The mapping stored in `path` (tensors on the CPU); refuses anything that needs pickled code."""
    path = Path(path)
    if path.suffix.lower() == SAFETENSORS_SUFFIX:
        return _load_safetensors(path, owner)
    return _load_weights_only(path, owner)


def load_numpy_state_dict(path: str | Path, *, owner: str = "weights") -> dict[str, Any]:
    """As `load_state_dict`, with NumPy arrays and without importing torch (for the NumPy engines)."""
    from mmfs.encoders.torch_checkpoint import CheckpointError, load_checkpoint

    path = Path(path)
    if path.suffix.lower() == SAFETENSORS_SUFFIX:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return dict(load_file(str(path)))
        except (OSError, SafetensorError) as err:
            raise _refused(owner, path, f"not a valid safetensors file ({_first_line(err)})") from err
    try:
        state = load_checkpoint(path)
    except CheckpointError as err:
        raise _refused(owner, path, str(err)) from err
    except OSError as err:
        raise _refused(owner, path, f"not a readable checkpoint ({_first_line(err)})") from err
    if not isinstance(state, Mapping):
        raise _refused(owner, path, f"holds a {type(state).__name__}, not a state dict")
    return dict(state)


def built_from(owner: str, build: Callable[[Any], T], state: Any) -> T:
    """`build(state)` (a NumPy engine's network from its state dict); keys or shapes that do not fit are
    one readable error, as `load_into` makes of torch's."""
    try:
        return build(state)
    except (KeyError, ValueError) as err:
        raise EncoderError(
            f"{owner}: cannot load weights ({err})", code=ErrorCode.ENCODER_UNAVAILABLE
        ) from err


def load_into(model: Any, state: Mapping[str, Any], *, owner: str, assign: bool = False) -> Any:
    """`model` with `state` loaded strictly: a missing, extra or mis-shaped tensor is one readable error.

    `assign`: the state's tensors become the model's parameters instead of being copied into them
    (same values; MiniLM loads in 0.25 s instead of 0.7-1.1 on a loaded CPU, without a second copy
    of its weights in memory). For a state read from a file that nothing else holds."""
    try:
        model.load_state_dict(state, strict=True, assign=assign)
    except (RuntimeError, KeyError) as err:
        reason = f"{owner}: cannot load weights ({err})"
        raise EncoderError(reason, code=ErrorCode.ENCODER_UNAVAILABLE) from err
    return model


def _load_safetensors(path: Path, owner: str) -> dict[str, Any]:
    """Tensors from a safetensors file; a file that is not one (a renamed pickle, say) is refused."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path), device="cpu"))
    except (OSError, SafetensorError) as err:
        raise _refused(owner, path, f"not a valid safetensors file ({_first_line(err)})") from err


def _load_weights_only(path: Path, owner: str) -> dict[str, Any]:
    """A torch checkpoint read by the weights_only unpickler: tensors and containers, no callables."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = f"refusing to unpickle anything but tensors (weights_only=True): {_unpickler_reason(err)}"
        raise _refused(owner, path, reason) from err
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise _refused(owner, path, f"not a readable checkpoint ({_first_line(err)})") from err
    if not isinstance(state, Mapping):
        raise _refused(owner, path, f"holds a {type(state).__name__}, not a state dict")
    return dict(state)


def _refused(owner: str, path: Path, reason: str) -> EncoderError:
    """The one error every refusal raises, naming the file and why."""
    return EncoderError(
        f"{owner}: cannot load weights from {path}: {reason}", code=ErrorCode.ENCODER_UNAVAILABLE
    )


def _unpickler_reason(err: BaseException) -> str:
    """What torch's weights_only unpickler objected to, without its page of advice."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker not in text:
        return _first_line(err)
    lines = [line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()]
    return lines[0].split(". Please", 1)[0] if lines else _first_line(err)


def _first_line(err: BaseException) -> str:
    """The first non-empty line of an error (torch's weights_only message runs to a page)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
