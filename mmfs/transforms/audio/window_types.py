"""The features of one audio window (`AudioWindow`, `ChannelFeatures`), apart from `audio.windows`.

Decoded items carry them from the decode workers to the run's process, and unpickling imports the module
that defines a class: this one needs only numpy, not librosa, PyAV or the spectral backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ChannelFeatures:
    """Per-channel features under `audio.channels: keep`, the channel axis first."""

    log_mel: np.ndarray  # (channels, n_mels, n_frames)
    mfcc: np.ndarray  # (channels, n_mfcc, n_frames)
    stats: np.ndarray  # (channels, 5): audio_features.STATS_ORDER


@dataclass
class AudioWindow:
    """Features of one window of the segment grid (one row of the `audio` table), of the mixdown."""

    window_index: int
    start_s: float
    end_s: float
    log_mel: np.ndarray  # (n_mels, n_frames) float32 dB
    mfcc: np.ndarray  # (n_mfcc, n_frames) float32
    rms: float
    flags: list[str] = field(default_factory=list)
    zcr: float = 0.0
    centroid_hz: float = 0.0
    bandwidth_hz: float = 0.0
    rolloff_hz: float = 0.0
    mfcc_delta: np.ndarray | None = None
    mfcc_delta2: np.ndarray | None = None
    power: np.ndarray | None = None  # (1 + n_fft // 2, n_frames), when configured
    magnitude: np.ndarray | None = None
    channels: ChannelFeatures | None = None

    def columns(self) -> dict[str, Any]:
        """The audio table's feature columns beyond the original `log_mel`, `mfcc` and `rms`."""
        ch = self.channels
        return {
            "zcr": self.zcr,
            "centroid_hz": self.centroid_hz,
            "bandwidth_hz": self.bandwidth_hz,
            "rolloff_hz": self.rolloff_hz,
            "mfcc_delta": _list(self.mfcc_delta),
            "mfcc_delta2": _list(self.mfcc_delta2),
            "spectrogram_power": _list(self.power),
            "spectrogram_magnitude": _list(self.magnitude),
            "n_channels": 1 if ch is None else int(ch.log_mel.shape[0]),
            "log_mel_channels": None if ch is None else _list(ch.log_mel),
            "mfcc_channels": None if ch is None else _list(ch.mfcc),
            "stats_channels": None if ch is None else _list(ch.stats),
        }


def _list(a: np.ndarray | None) -> Any:
    """A matrix cell as float32 numpy (the row codecs lay it out in Arrow: schemas/codecs.py)."""
    return None if a is None else a.astype(np.float32, copy=False)
