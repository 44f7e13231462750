"""A log-mel spectrogram as a PNG (Pillow), low frequencies at the bottom, time left to right.

The audio table keeps one `log_mel` (n_mels × frames) per segment window; laying the windows side
by side gives the item's spectrogram over its whole timeline.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

# anchor colours of a dark-to-bright ramp (close to matplotlib's "magma"), interpolated to 256
_ANCHORS = np.array(
    [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
    dtype=np.float32,
)


def _palette() -> np.ndarray:
    """A 256 × 3 uint8 colour ramp."""
    positions = np.linspace(0, len(_ANCHORS) - 1, 256)
    channels = [np.interp(positions, np.arange(len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)]
    return np.stack(channels, axis=1).astype(np.uint8)


_PALETTE = _palette()


def mel_matrix(windows: Sequence[Sequence[Sequence[float]] | None]) -> np.ndarray | None:
    """The windows' log-mel blocks joined along time (n_mels × total frames); None when there are none."""
    blocks = [np.asarray(w, dtype=np.float32) for w in windows if w is not None and len(w) > 0]
    blocks = [b for b in blocks if b.ndim == 2 and b.shape[1] > 0]
    if not blocks:
        return None
    n_mels = min(b.shape[0] for b in blocks)
    return np.concatenate([b[:n_mels] for b in blocks], axis=1)


def mel_png(matrix: np.ndarray, *, width: int = 800, height: int = 128) -> bytes:
    """PNG bytes of the matrix scaled to its own range (robust to silence: a flat matrix is dark)."""
    values = np.nan_to_num(matrix.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = np.percentile(values, 2), np.percentile(values, 99.5)
    scaled = np.zeros_like(values) if high <= low else np.clip((values - low) / (high - low), 0.0, 1.0)
    indexes = (scaled[::-1] * 255).astype(np.uint8)  # row 0 = highest mel band, drawn at the top
    image = Image.fromarray(_PALETTE[indexes], mode="RGB").resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
