"""Voice activity with silero-vad (its TorchScript model ships inside the PyPI package): a speech
probability per 32 ms chunk, averaged into one per window of the segment grid.

Several items run as one batch (silero's recurrent state is per row): their waveforms are zero-padded
to the longest, and each keeps only its own chunks.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import sha256_files
from mmfs.errors import EncoderError, ErrorCode

VAD_RATE = 16_000  # silero takes 8 or 16 kHz; other rates are resampled to 16 kHz
CHUNK = 512  # samples per probability at 16 kHz (32 ms)
PINNED_SHA256 = "e1122837f4154c511485fe0b9c64455f7b929c96fbb8d79fbdb336383ebd3720"  # silero-vad 6.2.3
_LOCK = threading.Lock()
_MODEL: Any = None


def model_file() -> Path:
    """silero-vad's bundled `silero_vad.jit`, found without importing the package."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError("vad: silero-vad is not installed", code=ErrorCode.ENCODER_UNAVAILABLE)
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.jit"


def provenance() -> dict[str, str]:
    """What made the `speech_prob` column."""
    import importlib.metadata

    return {
        "name": "vad.silero",
        "package": f"silero-vad=={importlib.metadata.version('silero-vad')}",
        "weights_sha256": sha256_files((model_file(),)),
        "preprocessing": f"mono {VAD_RATE} Hz, {CHUNK}-sample chunks, mean probability per window",
    }


def _model() -> Any:
    """The TorchScript model, loaded once per process after its hash is checked."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            import torch

            path = model_file()
            found = sha256_files((path,))
            if found != PINNED_SHA256:
                raise EncoderError(
                    f"vad: {path} sha256 {found} != pinned {PINNED_SHA256}; refusing to load",
                    code=ErrorCode.ENCODER_UNAVAILABLE,
                )
            _MODEL = torch.jit.load(str(path), map_location="cpu").eval()
        return _MODEL


def chunk_probs(waves: list[np.ndarray], sample_rate: int) -> list[np.ndarray]:
    """Speech probability of each 32 ms chunk of each waveform (mono float32), in one batch."""
    import torch

    waves = [_to_vad_rate(np.asarray(w, dtype=np.float32), sample_rate) for w in waves]
    n_chunks = [math.ceil(len(w) / CHUNK) for w in waves]
    longest = max(n_chunks, default=0)
    if longest == 0:
        return [np.zeros(0, dtype=np.float32) for _ in waves]
    batch = np.zeros((len(waves), longest * CHUNK), dtype=np.float32)
    for row, w in enumerate(waves):
        batch[row, : len(w)] = w
    model = _model()
    # optimized_execution off: the profiling executor spent its first two calls (25 s of 7 clips) profiling
    with _LOCK, torch.inference_mode(), torch.jit.optimized_execution(False):  # state lives between calls
        try:
            probs = model.audio_forward(torch.from_numpy(batch), VAD_RATE).numpy()
        except RuntimeError as err:
            raise EncoderError(f"vad: silero failed on a batch of {len(waves)}: {err}") from err
    return [probs[row, :n].astype(np.float32) for row, n in enumerate(n_chunks)]


def window_speech_prob(probs: np.ndarray, bounds: list[tuple[float, float]]) -> list[float | None]:
    """Mean chunk probability over each [start, end) window (chunks by their centre time)."""
    centres = (np.arange(len(probs)) + 0.5) * CHUNK / VAD_RATE
    out: list[float | None] = []
    for start, end in bounds:
        inside = probs[(centres >= start) & (centres < end)]
        if inside.size == 0 and len(probs):  # a window shorter than a chunk
            inside = probs[[min(len(probs) - 1, int((start + end) / 2 * VAD_RATE / CHUNK))]]
        out.append(float(inside.mean()) if inside.size else None)
    return out


def _to_vad_rate(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The waveform at 16 kHz (polyphase resampling when the pipeline runs at another rate)."""
    if sample_rate == VAD_RATE:
        return wave
    from scipy.signal import resample_poly

    g = math.gcd(VAD_RATE, sample_rate)
    return resample_poly(wave, VAD_RATE // g, sample_rate // g).astype(np.float32)
