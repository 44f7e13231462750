"""Voice activity with silero-vad (its ONNX model ships inside the PyPI package): a speech probability
per 32 ms chunk, averaged into one per window of the segment grid.

The ONNX model runs in onnxruntime, not the package's TorchScript file: `torch.jit.load` can run code
packed in the archive, an ONNX graph cannot (RELIABILITY.md: nothing pickle-capable is loaded).
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
CONTEXT = 64  # samples of the previous chunk silero prepends to each chunk at 16 kHz
STATE_SHAPE = (2, 128)  # silero's recurrent state per batch row: (2, batch, 128)
MODEL_FILE = "silero_vad.onnx"  # opset 16, 8 and 16 kHz
PINNED_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"  # silero-vad 6.2.3
_LOCK = threading.Lock()
_MODEL: Any = None


def model_file() -> Path:
    """silero-vad's bundled ONNX model, found without importing the package."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError("vad: silero-vad is not installed", code=ErrorCode.ENCODER_UNAVAILABLE)
    return Path(next(iter(spec.submodule_search_locations))) / "data" / MODEL_FILE


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
    """The onnxruntime session, created once per process after the model's hash is checked."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            import onnxruntime

            path = model_file()
            found = sha256_files((path,))
            if found != PINNED_SHA256:
                raise EncoderError(
                    f"vad: {path} sha256 {found} != pinned {PINNED_SHA256}; refusing to load",
                    code=ErrorCode.ENCODER_UNAVAILABLE,
                )
            opts = onnxruntime.SessionOptions()
            opts.inter_op_num_threads = opts.intra_op_num_threads = 1  # tiny model: threads cost more
            _MODEL = onnxruntime.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        return _MODEL


def chunk_probs(waves: list[np.ndarray], sample_rate: int) -> list[np.ndarray]:
    """Speech probability of each 32 ms chunk of each waveform (mono float32), in one batch."""
    waves = [_to_vad_rate(np.asarray(w, dtype=np.float32), sample_rate) for w in waves]
    n_chunks = [math.ceil(len(w) / CHUNK) for w in waves]
    longest = max(n_chunks, default=0)
    if longest == 0:
        return [np.zeros(0, dtype=np.float32) for _ in waves]
    batch = np.zeros((len(waves), longest * CHUNK), dtype=np.float32)
    for row, w in enumerate(waves):
        batch[row, : len(w)] = w
    session = _model()
    probs = np.empty((len(waves), longest), dtype=np.float32)
    state = np.zeros((STATE_SHAPE[0], len(waves), STATE_SHAPE[1]), dtype=np.float32)
    context = np.zeros((len(waves), CONTEXT), dtype=np.float32)
    rate = np.array(VAD_RATE, dtype=np.int64)
    try:
        for k in range(longest):  # the recurrent state carries from chunk to chunk, per row
            x = np.concatenate([context, batch[:, k * CHUNK : (k + 1) * CHUNK]], axis=1)
            out, state = session.run(None, {"input": x, "state": state, "sr": rate})
            probs[:, k] = out[:, 0]
            context = x[:, -CONTEXT:]
    except Exception as err:  # onnxruntime raises its own exception types
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


class SileroVad:
    """The VAD as a model object (`encoders.models.VoiceActivity`): silero's ONNX session, shared."""

    name = "vad.silero"

    def chunk_probs(self, waves: list[np.ndarray], sample_rate: int) -> list[np.ndarray]:
        """Speech probability of each 32 ms chunk of each waveform, in one batch."""
        return chunk_probs(waves, sample_rate)

    def provenance(self) -> dict[str, str]:
        """What made the `speech_prob` column."""
        return provenance()


def load_vad() -> SileroVad:
    """The process's VAD (its ONNX session loads on first use, once)."""
    return SileroVad()
