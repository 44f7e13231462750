"""EfficientNet-Lite's forward pass and its input preprocessing in NumPy: the CPU engine, without torch.

A run over photos or video frames on a CPU would otherwise import torch (~1.7 s and ~500 MB per
process) for a network that is mostly matrix products. Here the package's state dict (read by
`torch_checkpoint`, no torch) is folded for inference: each BatchNorm into the conv before it, the
1x1 convolutions (~90 % of the multiply-adds) as one BLAS product over the pixels of an NHWC batch,
the depthwise convolutions as one einsum over rows flattened to width x channels (`_depthwise`), each
expansion written with its bias and ReLU6 into the zero-bordered buffer its depthwise reads,
TensorFlow's "same" padding computed from the input size as the package computes it. The network's
shape is read from the state dict itself (expansions, kernel sizes, channel counts); only the strides
of each stage's first block come from EfficientNet-Lite's definition.

Preprocessing is torch's `interpolate(mode="bicubic", antialias=True)` as matrix products over
bands of the filter's matrix, width then height (Keys' cubic, a = -0.5, widened by the scale when
shrinking: PIL's and torch's filter).
The outputs equal the torch engine's to within 1e-5 (`tests/unit/test_efficientnet_numpy.py`).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# the stride of the first block of each of EfficientNet-Lite's seven stages (efficientnet_lite_builder.py)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
BN_EPSILON = 1e-3  # EfficientNet-Lite's batch_norm_epsilon
CUBIC_A = -0.5  # the bicubic coefficient of torch's antialiased filter (and PIL's)
STEM_STRIDE = 2
# blocks on maps taller than this run SMALL_BATCH images at a time (see `NumpyEfficientNet.forward`)
LARGE_MAP = 28
SMALL_BATCH = 1
SCRATCH_MOST = 16 << 20  # floats (64 MB): the most a thread keeps between forwards (`_scratch`)


@dataclass(frozen=True)
class _Pointwise:
    """A 1x1 convolution with its BatchNorm folded in: (C, O) weights and (O,) bias."""

    weight: np.ndarray
    bias: np.ndarray
    _rows: dict[int, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def bias_along(self, width: int) -> np.ndarray:
        """The bias repeated along a row of `width` pixels (width * O,): added to (rows, width * O), the
        inner loop runs over the whole row instead of O values (2-3x faster)."""
        return _repeated(self.bias, width, self._rows)


class _Depthwise:
    """A k x k depthwise convolution with its BatchNorm folded in: (k, k, C) weights, and the same weights
    laid along a flattened output row (see `_depthwise`), made once per output width."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, stride: int) -> None:
        self.weight, self.bias, self.stride = weight, bias, stride
        self._rows: dict[int, tuple[list[np.ndarray], np.ndarray]] = {}

    def along_rows(self, width: int) -> tuple[list[np.ndarray], np.ndarray]:
        """Per column phase p, the (k, taps, width * C) weights of columns p, p + stride, ...; and the bias
        repeated along a row (width * C,)."""
        found = self._rows.get(width)
        if found is None:
            k, _, c = self.weight.shape
            phases = []
            for p in range(self.stride):
                taps = self.weight[:, p :: self.stride]
                tiled = np.broadcast_to(taps[:, :, None, :], (k, taps.shape[1], width, c))
                phases.append(np.ascontiguousarray(tiled.reshape(k, taps.shape[1], width * c)))
            found = (phases, np.tile(self.bias, width))
            self._rows[width] = found  # two threads may both make it: equal arrays, either is kept
        return found


def _repeated(vector: np.ndarray, width: int, cache: dict[int, np.ndarray]) -> np.ndarray:
    """`vector` repeated `width` times, made once per width (kept in `cache`)."""
    found = cache.get(width)
    if found is None:
        found = cache[width] = np.tile(vector, width)
    return found


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
        stem, stem_bias = _folded(state, "_conv_stem", "_bn0")
        self.stem_kernel = stem.shape[-1]
        # (kh, kw, C_in, O) flattened to (kh*kw*C_in, O): the stem as one product over image patches
        self.stem = _Pointwise(
            np.ascontiguousarray(stem.transpose(2, 3, 1, 0).reshape(-1, stem.shape[0]), np.float32),
            stem_bias.astype(np.float32),
        )
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
        """Pooled features (n, 1280) and class logits (n, 1000) of a normalised NHWC float32 batch.

        The stem and the blocks on maps taller than LARGE_MAP run SMALL_BATCH images at a time (their
        maps then stay in the cache: a 112x112x96 map is 4.8 MB an image), the rest on the whole batch
        (small maps: the products want many rows)."""
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, self.head.weight.shape[1]), np.float32), np.zeros(
                (0, self.fc_bias.shape[0]), np.float32
            )
        split = self._first_small(x.shape[1])
        parts = [
            self._through(self._stem(x[i : i + SMALL_BATCH]), self.stem, self.blocks[:split])
            for i in range(0, n, SMALL_BATCH)
        ]
        x = self._through(parts[0] if len(parts) == 1 else np.concatenate(parts), None, self.blocks[split:])
        x = _biased(_product(x, self.head.weight), self.head, relu6=True)
        pooled = x.mean(axis=(1, 2), dtype=np.float32)
        return pooled, pooled @ self.fc_weight + self.fc_bias

    def _first_small(self, size: int) -> int:
        """The index of the first block whose input map is at most LARGE_MAP high (for an input this high)."""
        size = math.ceil(size / STEM_STRIDE)
        for index, block in enumerate(self.blocks):
            if size <= LARGE_MAP:
                return index
            size = math.ceil(size / block.depthwise.stride)
        return len(self.blocks)

    @staticmethod
    def _through(x: np.ndarray, pending: _Pointwise | None, blocks: Sequence[_Block]) -> np.ndarray:
        """x through `blocks`; `pending`: x is a product whose bias and ReLU6 are still due.

        Each expansion's product goes, with its bias and ReLU6, straight into the zero-bordered buffer
        that its depthwise convolution reads (no pad copy); a strided block expands its input's columns
        already split by phase (the input has a sixth of the channels to move)."""
        for block in blocks:
            dw = block.depthwise
            k, s = dw.weight.shape[0], dw.stride
            if block.expand is None and not block.skip:
                padded, ho, wo = _into_padded(_phased(x, k, s), x.shape, pending, k, s)
            else:
                if pending is not None:
                    x = _biased(x, pending, relu6=True)
                if block.expand is not None:
                    pre = _product(_phased(x, k, s), block.expand.weight)
                    padded, ho, wo = _into_padded(pre, x.shape, block.expand, k, s)
                else:
                    padded, ho, wo = _into_padded(_phased(x, k, s), x.shape, None, k, s)
            pending = None
            inputs = x
            x = _biased(_product(_depthwise(padded, dw, ho, wo), block.project.weight), block.project)
            if block.skip:
                x += inputs
        return x if pending is None else _biased(x, pending, relu6=True)

    def _stem(self, x: np.ndarray) -> np.ndarray:
        """The stem conv (3x3, stride 2, "same") as one product over the image's patches, without its bias.

        Each patch row (the kernel's k columns of C channels) is contiguous in the padded image, so the
        patches are k strided copies of k * C floats."""
        k, s = self.stem_kernel, STEM_STRIDE
        n, h, w, c = x.shape
        ho, top, hp = _padding(h, k, s)
        wo, left, wp = _padding(w, k, s)
        padded = np.zeros((n, hp, wp, c), np.float32)
        padded[:, top : top + h, left : left + w] = x
        sn, sh, sw, item = padded.strides
        patches = np.empty((n, ho, wo, k, k * c), np.float32)
        for i in range(k):
            patches[:, :, :, i] = np.lib.stride_tricks.as_strided(
                padded[:, i:], (n, ho, wo, k * c), (sn, sh * s, sw * s, item), writeable=False
            )
        return _product(patches, self.stem.weight, k * k * c)


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0, out=x)


def _biased(x: np.ndarray, conv: _Pointwise, relu6: bool = False) -> np.ndarray:
    """x (n, h, w, O) plus the conv's bias, in place when x is contiguous (then ReLU6 when asked)."""
    x = np.ascontiguousarray(x)
    n, h, w, o = x.shape
    rows = x.reshape(n * h, w * o)
    rows += conv.bias_along(w)
    if relu6:
        _relu6(rows)
    return x


def _product(x: np.ndarray, weight: np.ndarray, depth: int | None = None) -> np.ndarray:
    """The 1x1 convolution of `x` (its last `depth` values a pixel) with (C, O) weights: one product."""
    lead = x.shape[: x.ndim - (1 if depth is None else 2)]
    out = x.reshape(-1, depth or x.shape[-1]) @ weight
    return out.reshape(*lead, weight.shape[1])


def _padding(size: int, k: int, s: int) -> tuple[int, int, int]:
    """TensorFlow's "same" along one axis: the output's size, the pad before, the padded size (the extra
    pixel goes after)."""
    out = math.ceil(size / s)
    pad = max((out - 1) * s + k - size, 0)
    return out, pad // 2, size + pad


def _column_phases(w: int, k: int, s: int) -> list[tuple[int, int, int]]:
    """Per column phase p of a k-wide, stride-s "same" convolution over w columns: the first input column
    whose padded column is p (mod s), how many input columns do, and where they start in the phase."""
    _, left, _ = _padding(w, k, s)
    phases = []
    for p in range(s):
        first = (p - left) % s
        phases.append((first, len(range(first, w, s)), (left + first) // s))
    return phases


def _phased(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """(n, h, s, m, C): x's columns split by their padded column's phase (a view when s is 1)."""
    n, h, w, c = x.shape
    if s == 1:
        return x.reshape(n, h, 1, w, c)
    phases = _column_phases(w, k, s)
    most = max(count for _, count, _ in phases)
    out = np.empty((n, h, s, most, c), x.dtype)
    for p, (first, count, _) in enumerate(phases):
        out[:, :, p, :count] = x[:, :, first::s]
        out[:, :, p, count:] = 0.0
    return out


def _into_padded(
    pre: np.ndarray, shape: tuple[int, ...], conv: _Pointwise | None, k: int, s: int
) -> tuple[np.ndarray, int, int]:
    """ReLU6(pre + conv's bias) (or pre itself when conv is None) inside a zero border for a k x k,
    stride-s depthwise convolution of an (n, h, w, C) map; and the convolution's output height, width.

    `pre` is the map split by column phase (`_phased`). The buffer is (n, Hp, s, ceil(Wp / s), C):
    padded column s * m + p is [:, :, p, m], so each column phase of a strided convolution reads
    contiguous rows. Only the border is zeroed; the interior is written once, by the pass that adds
    the bias (or copies). The buffer is this thread's scratch: valid until its next call here."""
    n, h, w, _ = shape
    c = pre.shape[-1]
    ho, top, hp = _padding(h, k, s)
    wo, _, wp = _padding(w, k, s)
    wq = -(-wp // s)
    padded = _scratch((n, hp, s, wq, c))
    padded[:, :top] = 0.0
    padded[:, top + h :] = 0.0
    rows = padded.reshape(n, hp, s, wq * c)[:, top : top + h]
    sources = pre.reshape(n, h, s, -1)
    for p, (_, count, start) in enumerate(_column_phases(w, k, s)):
        rows[:, :, p, : start * c] = 0.0
        rows[:, :, p, (start + count) * c :] = 0.0
        inside, source = rows[:, :, p, start * c : (start + count) * c], sources[:, :, p, : count * c]
        if conv is None:
            np.copyto(inside, source)
        else:
            _relu6(np.add(source, conv.bias_along(count), out=inside))
    return padded, ho, wo


_SCRATCH = threading.local()


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float32 array of `shape` in this thread's scratch buffer, which grows to the
    largest asked for and is reused: the depthwise's input buffer (one alive at a time per thread).

    A fresh 7 MB buffer each block (8 images of 18x18x672) is a fresh mmap: ~1,900 page faults a
    forward of 8 images, every one zeroing a page that is written again at once."""
    size = math.prod(shape)
    if size > SCRATCH_MOST:  # a batch far above the hint: not kept for the thread's life
        return np.empty(shape, np.float32)
    buffer: np.ndarray | None = getattr(_SCRATCH, "buffer", None)
    if buffer is None or buffer.size < size:
        buffer = _SCRATCH.buffer = np.empty(size, np.float32)
    return buffer[:size].reshape(shape)


def _depthwise(padded: np.ndarray, conv: _Depthwise, ho: int, wo: int) -> np.ndarray:
    """ReLU6 of the depthwise convolution (bias added) of a buffer made by `_into_padded`: (n, ho, wo, C).

    Each output row is one flattened axis of wo * C values, and so is each tap's input row in its
    column phase (shifted by the tap's column), so one einsum per phase sums the taps with contiguous
    runs of wo * C floats (a strided (n, ho, wo, k, k, C) view gives runs of C: 32 channels on the
    first block's 112x112 map, 4x slower there)."""
    n, _, s, _, c = padded.shape
    k = conv.weight.shape[0]
    phases, bias = conv.along_rows(wo)
    sn, sh, _, _, item = padded.strides
    out: np.ndarray | None = None
    for p, weight in enumerate(phases):
        view = np.lib.stride_tricks.as_strided(
            padded[:, :, p],
            (n, ho, k, weight.shape[1], wo * c),
            (sn, sh * s, sh, c * item, item),
            writeable=False,
        )
        part = np.einsum("nhijx,ijx->nhx", view, weight)
        if out is None:
            out = part
        else:
            out += part
    assert out is not None
    out += bias
    return _relu6(out).reshape(n, ho, wo, c)


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


RESIZE_BAND = 32  # output pixels per band of the resize's products


@functools.lru_cache(maxsize=64)
def resize_bands(size_in: int, size_out: int) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """`resize_matrix` cut into bands of RESIZE_BAND output pixels: (first, end, lo, hi, weights) with
    weights = matrix[first:end, lo:hi], the columns outside lo:hi being zero in those rows."""
    matrix = resize_matrix(size_in, size_out)
    bands = []
    for first in range(0, size_out, RESIZE_BAND):
        end = min(first + RESIZE_BAND, size_out)
        used = np.flatnonzero(matrix[first:end].any(axis=0))
        lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
        bands.append((first, end, lo, hi, np.ascontiguousarray(matrix[first:end, lo:hi])))
    return tuple(bands)


def resized(crop: np.ndarray, size: int) -> np.ndarray:
    """An (h, w, 3) uint8 crop resized to (size, size, 3) float32 in 0..255 (bicubic, antialiased).

    Width first, then height (torch's order), each as products over bands of the filter's matrix (a
    tap reaches at most 2 * scale + 2 input pixels: the dense matrix would multiply mostly zeros),
    on channel planes so that every product is one matrix by a 2-D block."""
    h, w, c = crop.shape
    planes = crop.transpose(2, 0, 1).reshape(c * h, w).astype(np.float32)
    wide = np.empty((c * h, size), np.float32)  # (c * h, size): each channel's rows, resized in width
    for first, end, lo, hi, weights in resize_bands(w, size):
        wide[:, first:end] = planes[:, lo:hi] @ weights.T
    tall = wide.reshape(c, h, size)
    out = np.empty((size, size, c), np.float32)
    for first, end, lo, hi, weights in resize_bands(h, size):
        out[first:end] = (weights @ tall[:, lo:hi]).transpose(1, 2, 0)
    return np.clip(out, 0.0, 255.0, out=out)


def normalised_batch(squares: Sequence[np.ndarray], mean: float, std: float) -> np.ndarray:
    """(n, S, S, 3) float32 network input from resized squares in 0..255."""
    batch = np.stack(squares)
    batch -= mean
    batch /= std
    return batch
