"""What both audio feature backends share: constants, the per-block result, frame indexing, parameters.

Light on purpose (NumPy only): the librosa backend (`audio.librosa_backend`), the torchaudio backend
(`audio.torch_backend`), the streaming analysis that calls them (`audio.frames`) and the pipeline's
version hash import it without pulling in either library, and neither backend imports the other.

Framing: one centred STFT over the whole signal, zero-padded by n_fft // 2 at its two ends only (what
librosa.stft(center=True, pad_mode="constant") does). Frame t is centred on sample t * hop; a window
[lo, hi) of the segment grid takes the frames centred in [lo, hi), and the last window also the frame
centred on the signal's end: the windows partition the frames, so their features laid end to end are
the whole signal's (a 1 s window at 16 kHz, hop 160, has 100 frames; the last one, 1 + n // hop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from mmfs.config import AudioConfig

AMIN = 1e-10  # power floor before the log: 10 * log10(1e-10) = -100 dB
CENTER_PAD: Final = "constant"  # the signal zero-padded at its two ends
# Names the analysis in the audio feature_version: features per window changed when windows stopped being
# analysed alone (zero-padded at each window's edges) and became cuts of one continuous analysis.
ANALYSIS: Final = "continuous-stft-1"
STATS_ORDER = ("rms", "zcr", "centroid_hz", "bandwidth_hz", "rolloff_hz")  # stats_channels' columns


@dataclass
class BlockFeatures:
    """Per-frame features of a block of consecutive frames of S signals; frame axis last."""

    log_mel: np.ndarray  # (S, n_mels, T) dB
    centroid: np.ndarray  # (S, T) Hz
    bandwidth: np.ndarray  # (S, T) Hz
    rolloff: np.ndarray  # (S, T) Hz
    power: np.ndarray | None  # (S, 1 + n_fft // 2, T), when stored
    magnitude: np.ndarray | None


def win_length(cfg: AudioConfig) -> int:
    """The analysis window's length in samples (zero-padded to n_fft when shorter)."""
    return cfg.win_length or cfg.n_fft


def mel_norm(cfg: AudioConfig) -> str | None:
    """The mel filterbank normalisation as both libraries name it."""
    return None if cfg.mel_norm == "none" else cfg.mel_norm


def frame_count(n_samples: int, hop: int) -> int:
    """Frames of a centred STFT over n samples: 1 + n // hop."""
    return 1 + n_samples // hop


def window_frames(lo: int, hi: int, n_samples: int, hop: int) -> tuple[int, int]:
    """[first, last) frames of the window [lo, hi): those centred in [lo, hi) (in [lo, end] for the
    window that ends the signal), at least one."""
    total = frame_count(n_samples, hop)
    first = min(math.ceil(lo / hop), total - 1)
    last = total if hi >= n_samples else min(math.ceil(hi / hop), total)
    return first, max(first + 1, last)


def block_input(signals: np.ndarray, t0: int, t1: int, n_fft: int, hop: int) -> np.ndarray:
    """(S, (t1 - t0 - 1) * hop + n_fft) samples under frames t0..t1-1, zeros past the signal's ends."""
    start = t0 * hop - n_fft // 2
    length = (t1 - t0 - 1) * hop + n_fft
    n = signals.shape[1]
    out = np.zeros((signals.shape[0], length), np.float32)
    lo, hi = max(start, 0), min(start + length, n)
    if hi > lo:
        out[:, lo - start : hi - start] = signals[:, lo:hi]
    return out


def feature_params(cfg: AudioConfig, segment_s: float) -> dict[str, Any]:
    """Everything that shapes the stored features: recorded in the audio table's schema metadata."""
    return {
        "backend": cfg.backend,
        "sample_rate": cfg.sample_rate,
        "channels": cfg.channels,
        "window_s": segment_s,
        "analysis": ANALYSIS,
        "framing": "one STFT over the whole signal; a window takes the frames centred in [start, end)",
        "n_fft": cfg.n_fft,
        "hop": cfg.hop_length,
        "win_length": win_length(cfg),
        "window": cfg.window,
        "center": True,
        "pad_mode": f"{CENTER_PAD}, at the signal's two ends only",
        "power": cfg.power,
        "n_mels": cfg.n_mels,
        "fmin": cfg.fmin,
        "fmax": cfg.fmax if cfg.fmax is not None else cfg.sample_rate / 2,
        "mel_scale": cfg.mel_scale,
        "norm": mel_norm(cfg),
        "log": f"10*log10(max(mel^(2/power), {AMIN}))",
        "n_mfcc": cfg.n_mfcc,
        "mfcc_top_db": cfg.mfcc_top_db,
        "mfcc_clamp": "below the peak of the whole signal's log-mel",
        "dct": "type 2, ortho",
        "deltas": cfg.deltas,
        "delta_width": cfg.delta_width,
        "delta_mode": "savgol over the whole signal's frames, its edges repeated (librosa mode=nearest)",
        "spectrogram": list(cfg.spectrogram),
        "rolloff_percent": cfg.rolloff_percent,
        "stats": list(STATS_ORDER),
    }
