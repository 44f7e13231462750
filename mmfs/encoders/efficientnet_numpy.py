"""EfficientNet-Lite's forward pass and its input preprocessing in NumPy: the CPU engine, without torch.

A run over photos or video frames on a CPU would otherwise import torch (~1.7 s and ~500 MB per
process) for a network that is mostly matrix products. Here the package's state dict (read by
`torch_checkpoint`, no torch) is folded for inference: each BatchNorm into the conv before it, the
1x1 convolutions (~90 % of the multiply-adds) as one BLAS product over the pixels of an NHWC batch,
the depthwise convolutions as one einsum over a strided view of their patches, TensorFlow's
"same" padding computed from the input size as the package computes it. The network's shape is
read from the state dict itself (expansions, kernel sizes, channel counts); only the strides of each
stage's first block come from EfficientNet-Lite's definition.

Preprocessing is torch's `interpolate(mode="bicubic", antialias=True)` as two banded matrix
products (Keys' cubic, a = -0.5, widened by the scale when shrinking: PIL's and torch's filter).
The outputs equal the torch engine's to within 1e-5 (`tests/unit/test_efficientnet_numpy.py`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# the stride of the first block of each of EfficientNet-Lite's seven stages (efficientnet_lite_builder.py)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
BN_EPSILON = 1e-3  # EfficientNet-Lite's batch_norm_epsilon
CUBIC_A = -0.5  # the bicubic coefficient of torch's antialiased filter (and PIL's)
STEM_STRIDE = 2


@dataclass(frozen=True)
class _Pointwise:
    """A 1x1 convolution with its BatchNorm folded in: (C, O) weights and (O,) bias."""

    weight: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class _Depthwise:
    """A k x k depthwise convolution with its BatchNorm folded in: (k, k, C) weights."""

    weight: np.ndarray
    bias: np.ndarray
    stride: int


@dataclass(frozen=True)
class _Block:
    expand: _Pointwise | None
    depthwise: _Depthwise
    project: _Pointwise
    skip: bool


def _folded(state: Mapping[str, np.ndarray], conv: str, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """conv weights (O, I, kh, kw) and bias with the eval-mode BatchNorm `norm` folded in."""
    weight = np.asarray(state[f"{conv}.weight"], np.float64)
    scale = np.asarray(state[f"{norm}.weight"], np.float64) / np.sqrt(
        np.asarray(state[f"{norm}.running_var"], np.float64) + BN_EPSILON
    )
    bias = np.asarray(state.get(f"{conv}.bias", np.zeros(weight.shape[0])), np.float64)
    shift = np.asarray(state[f"{norm}.bias"], np.float64) - np.asarray(state[f"{norm}.running_mean"]) * scale
    return weight * scale[:, None, None, None], bias * scale + shift


def _pointwise(state: Mapping[str, np.ndarray], conv: str, norm: str) -> _Pointwise:
    weight, bias = _folded(state, conv, norm)
    return _Pointwise(np.ascontiguousarray(weight[:, :, 0, 0].T, np.float32), bias.astype(np.float32))


class NumpyEfficientNet:
    """An EfficientNet-Lite (any of Lite0..Lite4) folded for inference from its package's state dict."""

    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        stem, self.stem_bias = _folded(state, "_conv_stem", "_bn0")
        self.stem_kernel = stem.shape[-1]
        # (kh, kw, C_in, O) flattened to (kh*kw*C_in, O): the stem as one product over image patches
        self.stem = np.ascontiguousarray(stem.transpose(2, 3, 1, 0).reshape(-1, stem.shape[0]), np.float32)
        self.stem_bias = self.stem_bias.astype(np.float32)
        self.blocks = self._blocks(state)
        self.head = _pointwise(state, "_conv_head", "_bn1")
        self.fc_weight = np.ascontiguousarray(np.asarray(state["_fc.weight"], np.float32).T)
        self.fc_bias = np.asarray(state["_fc.bias"], np.float32)

    @staticmethod
    def _blocks(state: Mapping[str, np.ndarray]) -> list[_Block]:
        count = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("_blocks."))
        blocks: list[_Block] = []
        stage = -1
        for i in range(count):
            p = f"_blocks.{i}"
            expand = (
                _pointwise(state, f"{p}._expand_conv", f"{p}._bn0")
                if f"{p}._expand_conv.weight" in state
                else None
            )
            dw, dw_bias = _folded(state, f"{p}._depthwise_conv", f"{p}._bn1")
            project = _pointwise(state, f"{p}._project_conv", f"{p}._bn2")
            channels_in = expand.weight.shape[0] if expand is not None else dw.shape[0]
            channels_out = project.weight.shape[1]
            first_of_stage = channels_in != channels_out  # every stage of the family changes the width
            stage += first_of_stage
            if stage < 0 or stage >= len(STAGE_STRIDES):
                raise ValueError(f"block {i}: not an EfficientNet-Lite layout (stage {stage})")
            stride = STAGE_STRIDES[stage] if first_of_stage else 1
            depthwise = _Depthwise(
                np.ascontiguousarray(dw[:, 0].transpose(1, 2, 0), np.float32),
                dw_bias.astype(np.float32),
                stride,
            )
            blocks.append(_Block(expand, depthwise, project, skip=not first_of_stage))
        return blocks

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features (n, 1280) and class logits (n, 1000) of a normalised NHWC float32 batch."""
        x = _relu6(self._stem(x))
        for block in self.blocks:
            inputs = x
            if block.expand is not None:
                x = _relu6(_apply_pointwise(x, block.expand))
            x = _relu6(_depthwise(x, block.depthwise))
            x = _apply_pointwise(x, block.project)
            if block.skip:
                x += inputs
        x = _relu6(_apply_pointwise(x, self.head))
        pooled = x.mean(axis=(1, 2), dtype=np.float32)
        return pooled, pooled @ self.fc_weight + self.fc_bias

    def _stem(self, x: np.ndarray) -> np.ndarray:
        """The stem conv (3x3, stride 2, "same") as one product over the image's patches."""
        k, s = self.stem_kernel, STEM_STRIDE
        padded, ho, wo = _same_padded(x, k, s)
        n, c = x.shape[0], x.shape[3]
        patches = np.empty((n, ho, wo, k, k, c), np.float32)
        for i in range(k):
            for j in range(k):
                patches[:, :, :, i, j, :] = padded[
                    :, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s
                ]
        out = patches.reshape(-1, k * k * c) @ self.stem
        out += self.stem_bias
        return out.reshape(n, ho, wo, -1)


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0, out=x)


def _apply_pointwise(x: np.ndarray, conv: _Pointwise) -> np.ndarray:
    n, h, w, c = x.shape
    out = x.reshape(-1, c) @ conv.weight
    out += conv.bias
    return out.reshape(n, h, w, -1)


def _same_padded(x: np.ndarray, k: int, s: int) -> tuple[np.ndarray, int, int]:
    """`x` zero-padded as TensorFlow's "same" (the extra pixel after), and the output's height, width."""
    n, h, w, c = x.shape
    ho, wo = math.ceil(h / s), math.ceil(w / s)
    pad_h, pad_w = max((ho - 1) * s + k - h, 0), max((wo - 1) * s + k - w, 0)
    top, left = pad_h // 2, pad_w // 2
    padded = np.zeros((n, h + pad_h, w + pad_w, c), np.float32)
    padded[:, top : top + h, left : left + w] = x
    return padded, ho, wo


def _depthwise(x: np.ndarray, conv: _Depthwise) -> np.ndarray:
    """k x k depthwise convolution, "same" padding: one einsum over a strided view of the patches.

    The view (n, ho, wo, k, k, c) copies nothing, and einsum's sum-of-products loop reads each tap
    once without temporaries: 2-2.6x the shifted multiply-add per tap (which streams three arrays
    per tap) on the network's layers, measured on one core."""
    k, s = conv.weight.shape[0], conv.stride
    padded, ho, wo = _same_padded(x, k, s)
    n, _, _, c = padded.shape
    sn, sh, sw, sc = padded.strides
    patches = np.lib.stride_tricks.as_strided(
        padded, (n, ho, wo, k, k, c), (sn, sh * s, sw * s, sh, sw, sc), writeable=False
    )
    out = np.einsum("nhwijc,ijc->nhwc", patches, conv.weight)
    out += conv.bias
    return out


# -- preprocessing ----------------------------------------------------------------------------------


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = CUBIC_A."""
    a = CUBIC_A
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


@functools.lru_cache(maxsize=64)
def resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of torch's antialiased bicubic resize along one axis."""
    scale = size_in / size_out
    support = 2.0 * scale if scale >= 1.0 else 2.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    matrix = np.zeros((size_out, size_in), np.float64)
    for i in range(size_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), size_in)
        taps = _cubic((np.arange(lo, hi) - center + 0.5) * invscale)
        total = taps.sum()
        matrix[i, lo:hi] = taps / total if total != 0 else taps
    return matrix.astype(np.float32)


def resized(crop: np.ndarray, size: int) -> np.ndarray:
    """An (h, w, 3) uint8 crop resized to (size, size, 3) float32 in 0..255 (bicubic, antialiased)."""
    h, w, c = crop.shape
    x = crop.astype(np.float32)
    rows = resize_matrix(h, size)  # (size, h)
    cols = resize_matrix(w, size)  # (size, w)
    # width first, then height (torch's order): (h, w, c) -> (h, size, c) -> (size, size, c)
    wide = np.matmul(cols, x)  # broadcast over rows: (h, size, c)
    out = np.matmul(rows, wide.reshape(h, size * c)).reshape(size, size, c)
    return np.clip(out, 0.0, 255.0, out=out)


def normalised_batch(squares: Sequence[np.ndarray], mean: float, std: float) -> np.ndarray:
    """(n, S, S, 3) float32 network input from resized squares in 0..255."""
    batch = np.stack(squares)
    batch -= mean
    batch /= std
    return batch
