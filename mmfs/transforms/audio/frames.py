"""One continuous spectral analysis of whole signals, streamed in blocks of frames so memory stays flat.

The centred STFT of the whole signal (zero-padded at its two ends only, `audio.spec`) is computed block
by block: each block gets the samples under its frames, overlap included, so its frames are exactly
those of one STFT over everything, and only one block's spectrum is held at a time. What is kept per
frame (log-mel, spectral statistics, a stored spectrogram) is the output itself. MFCC (clamped below
the whole signal's peak, then the orthonormal DCT-II) and deltas (Savitzky-Golay over all the frames,
edges repeated) follow on the kept log-mel: equal to librosa.feature.mfcc / delta on the whole signal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft

from mmfs.config import AudioConfig
from mmfs.transforms.audio.spec import BlockFeatures, block_input, frame_count

BLOCK_FRAMES = 4096  # frames per backend call (~41 s at hop 160): one block's STFT is ~7 MB a signal

Block = Callable[[np.ndarray, int, AudioConfig], BlockFeatures]


@dataclass
class FrameFeatures:
    """Per-frame features of S whole signals, frame axis last (T = 1 + n // hop frames)."""

    log_mel: np.ndarray  # (S, n_mels, T) dB
    mfcc: np.ndarray  # (S, n_mfcc, T)
    delta: np.ndarray | None  # (S, n_mfcc, T), when cfg.deltas
    delta2: np.ndarray | None
    centroid: np.ndarray  # (S, T) Hz
    bandwidth: np.ndarray
    rolloff: np.ndarray
    power: np.ndarray | None  # (S, 1 + n_fft // 2, T), when stored
    magnitude: np.ndarray | None

    def finite_frames(self) -> np.ndarray:
        """(T,) whether every feature of every signal is finite at each frame."""
        ok = np.ones(self.log_mel.shape[-1], bool)
        for a in (self.log_mel, self.mfcc, self.delta, self.delta2, self.centroid, self.bandwidth):
            if a is not None:
                ok &= np.isfinite(a).reshape(-1, a.shape[-1]).all(axis=0)
        return ok & np.isfinite(self.rolloff).all(axis=0)


def backend_block(cfg: AudioConfig) -> Block:
    """The configured backend's block function (torch is imported only when it is chosen)."""
    if cfg.backend == "torchaudio":
        from mmfs.transforms.audio.torch_backend import torch_block

        return torch_block
    from mmfs.transforms.audio.librosa_backend import librosa_block

    return librosa_block


def frame_features(signals: np.ndarray, sample_rate: int, cfg: AudioConfig) -> FrameFeatures:
    """Features of every frame of (S, n) signals, from one continuous analysis each."""
    total = frame_count(signals.shape[1], cfg.hop_length)
    block = backend_block(cfg)
    step = max(1, BLOCK_FRAMES // signals.shape[0])
    kept: dict[str, np.ndarray] = {}
    for t0 in range(0, total, step):
        t1 = min(total, t0 + step)
        part = block(block_input(signals, t0, t1, cfg.n_fft, cfg.hop_length), sample_rate, cfg)
        for name, values in vars(part).items():
            if values is None:
                continue
            if name not in kept:  # allocated once the first block shows the shapes
                kept[name] = np.empty((*values.shape[:-1], total), np.float32)
            kept[name][..., t0:t1] = values
    mfcc = _mfcc(kept["log_mel"], cfg)
    delta = delta2 = None
    if cfg.deltas:
        delta, delta2 = (_delta(mfcc, cfg.delta_width, order) for order in (1, 2))
    return FrameFeatures(
        log_mel=kept["log_mel"],
        mfcc=mfcc,
        delta=delta,
        delta2=delta2,
        centroid=kept["centroid"],
        bandwidth=kept["bandwidth"],
        rolloff=kept["rolloff"],
        power=kept.get("power"),
        magnitude=kept.get("magnitude"),
    )


def _mfcc(log_mel: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """librosa.feature.mfcc(S=clamped log-mel): the clamp below each signal's peak, DCT-II block by block."""
    s, _, total = log_mel.shape
    out = np.empty((s, cfg.n_mfcc, total), np.float32)
    floor = None
    if cfg.mfcc_top_db is not None:
        floor = (log_mel.max(axis=(1, 2)) - np.float32(cfg.mfcc_top_db))[:, None, None]
    for t0 in range(0, total, BLOCK_FRAMES):
        part = log_mel[..., t0 : t0 + BLOCK_FRAMES]
        if floor is not None:
            part = np.maximum(part, floor)
        out[..., t0 : t0 + BLOCK_FRAMES] = scipy.fft.dct(part, axis=-2, type=2, norm="ortho")[:, : cfg.n_mfcc]
    return out


def _delta(mfcc: np.ndarray, width: int, order: int) -> np.ndarray:
    """librosa.feature.delta(mode="nearest") along all the frames: Savitzky-Golay, edges repeated.

    scipy.signal is imported here: a second of start-up that a decoder of photos and texts never needs."""
    import scipy.signal

    out = scipy.signal.savgol_filter(mfcc, width, order, deriv=order, axis=-1, mode="nearest")
    return np.asarray(out, dtype=np.float32)
